import type { IncomingMessage, ServerResponse } from 'node:http'
/**
 * ESI pages for the differential test against varnishd (esi-differential.test.ts): the
 * markup of varnish's own e*.vtc cases and of its ESI documentation (users-guide/esi.rst,
 * reference/esi.rst), each cut down to one point, plus the broken markup VEP's error paths
 * handle. Fragments live under /f/ (see `fragments`); `/f/echo` answers with what its request
 * looked like, so what an include's request carries is compared too.
 */
export interface EsiCase {
  readonly name: string
  /** The page's path (relative includes resolve against it). */
  readonly path?: string
  readonly body: string | Buffer
  /** More response fields of the page. */
  readonly headers?: Record<string, string>
  /** Request fields of the client. */
  readonly request?: Record<string, string>
  readonly method?: string
  /** Not stored with do_esi (the page is delivered as it is). */
  readonly plain?: boolean
}

const inc = (src: string, extra = '') => `<esi:include src="${src}"${extra}/>`

export const esiCases: readonly EsiCase[] = [
  // e00003, the users' guide: the basic include.
  { name: 'include', body: `<html>before ${inc('/f/a')} after</html>` },
  { name: 'include-first', body: `${inc('/f/a')}<p>after</p>` },
  { name: 'include-last', body: `<p>before</p>${inc('/f/a')}` },
  { name: 'two-includes', body: `<div>${inc('/f/a')}|${inc('/f/b')}</div>` },
  { name: 'same-twice', body: `<div>${inc('/f/a')}${inc('/f/a')}</div>` },
  // e00005: relative to the page's directory.
  { name: 'relative', path: '/c/dir/page.html', body: `<p>${inc('frag')}</p>` },
  { name: 'relative-query', path: '/c/dir/page.html?x=/y/z', body: `<p>${inc('frag?q=1')}</p>` },
  { name: 'relative-root', path: '/page', body: `<p>${inc('f/a')}</p>` },
  { name: 'relative-dotdot', path: '/c/dir/page', body: `<p>${inc('../frag')}</p>` },
  // e00006: absolute http:// with its own Host; https:// ignored.
  { name: 'absolute-http', body: `<p>${inc('http://other.example/f/echo/abs')}</p>` },
  { name: 'absolute-https', body: `<p>${inc('https://other.example/f/echo/abss')}</p>` },
  { name: 'absolute-no-path', body: `<p>${inc('http://other.example')}</p>` },
  // e00001, e00020: esi:remove.
  { name: 'remove', body: `<p>kept<esi:remove>gone ${inc('/f/a')}</esi:remove> kept</p>` },
  { name: 'remove-unclosed', body: `<p>kept<esi:remove>gone</p>` },
  { name: 'remove-not-open', body: `<p>kept</esi:remove> kept</p>` },
  { name: 'remove-empty-tag', body: `<p>a<esi:remove/>b</p>` },
  { name: 'remove-nested', body: `<p>a<esi:remove>x<esi:remove>y</esi:remove>z</esi:remove>b</p>` },
  { name: 'remove-markup', body: `<p>a<esi:remove><b>bold</b><!-- c --></esi:remove>b</p>` },
  // e00004: <!--esi ... -->
  { name: 'esi-comment-include', body: `<p><!--esi ${inc('/f/a')} --></p>` },
  { name: 'esi-comment-text', body: `<p><!--esi plain text --></p>` },
  { name: 'esi-comment-markup', body: `<p><!--esi <b>x</b> --> after</p>` },
  { name: 'esi-comment-unterminated', body: `<p><!--esi never ends` },
  { name: 'esi-comment-dashes', body: `<p><!--esi a -- b ---> c</p>` },
  { name: 'comment-plain', body: `<p><!-- a comment ${inc('/f/a')} --> after</p>` },
  { name: 'comment-esi-in-remove', body: `<p><esi:remove><!--esi x --></esi:remove>y</p>` },
  // e00002: CDATA passes through untouched.
  { name: 'cdata', body: `<p><![CDATA[${inc('/f/a')} <esi:remove>x</esi:remove>]]> after</p>` },
  // <esi:comment>
  { name: 'esi-comment-element', body: `<p>a<esi:comment text="note"/>b</p>` },
  { name: 'esi-comment-element-open', body: `<p>a<esi:comment text="note">b</p>` },
  // e00008: parsing errors.
  { name: 'bogus-element', body: `<p>a<esi:bogus src="/f/a"/>b</p>` },
  { name: 'include-no-slash', body: `<p>a<esi:include src="/f/a">b</p>` },
  { name: 'include-no-src', body: `<p>a<esi:include/>b</p>` },
  { name: 'include-end-tag', body: `<p>a</esi:include>b</p>` },
  { name: 'include-two-src', body: `<p>a<esi:include src="/f/a" src="/f/b"/>b</p>` },
  { name: 'include-slash-space', body: `<p>a<esi:include src="/f/a"/ >b</p>` },
  { name: 'include-spaced-equals', body: `<p>a<esi:include src = "/f/a"/>b</p>` },
  { name: 'include-unquoted', body: `<p>a<esi:include src=/f/a />b</p>` },
  { name: 'include-single-quote', body: `<p>a<esi:include src='/f/a'/>b</p>` },
  { name: 'include-missing-delim', body: `<p>a<esi:include src="/f/a>b</p>` },
  { name: 'include-other-attr', body: `<p>a<esi:include alt="/f/b" src="/f/a"/>b</p>` },
  { name: 'include-bad-attr-char', body: `<p>a<esi:include 1src="/f/a"/>b</p>` },
  { name: 'include-newline', body: `<p>a<esi:include\n\tsrc="/f/a"\n/>b</p>` },
  { name: 'include-in-remove', body: `<p>a<esi:remove>${inc('/f/a')}</esi:remove>b</p>` },
  { name: 'uppercase', body: `<p>a<ESI:include src="/f/a"/>b</p>` },
  { name: 'broken-then-good', body: `<p>a<esi:include src="/f/a" !>b${inc('/f/b')}c</p>` },
  { name: 'ends-in-tag', body: `<p>a<esi:inc` },
  { name: 'ends-in-attr', body: `<p>a<esi:include src="/f/` },
  { name: 'ends-at-lt', body: `<p>a<` },
  // The body ends in other states (VEP_Finish's "VEP ended inside a tag" counts in esi_errors).
  { name: 'ends-in-other-tag', body: `<p>a<b` },
  { name: 'ends-in-comment', body: `<p>a<!-- x` },
  { name: 'ends-in-cdata', body: `<p>a<![CDATA[ x` },
  { name: 'ends-in-intag', body: `<p>a<esi:include ` },
  { name: 'ends-in-bogus', body: `<p>a<esi:bogus ` },
  { name: 'ends-in-delim', body: `<p>a<esi:include src=` },
  { name: 'ends-in-remove', body: `<p>a<esi:remove>x` },
  { name: 'ends-after-include', body: `<p>a${inc('/f/a')}` },
  { name: 'include-src-space', body: `<p>a<esi:include src="/f/a b"/>b${inc('/f/b')}</p>` },
  { name: 'include-src-tab', body: `<p>a<esi:include src='/f/a\tb'/>b</p>` },
  // e00018: entities in src.
  { name: 'entities', body: `<p>${inc('/f/echo/ent?a=1&amp;b=&lt;&gt;&quot;&apos;&amp;amp;')}</p>` },
  // e00009, e00014, e00016: the XML check.
  { name: 'not-xml', body: `text first ${inc('/f/a')}` },
  { name: 'leading-white-space', body: ` \r\n\t<p>${inc('/f/a')}</p>` },
  { name: 'no-esi', body: `<html><body>no esi here</body></html>` },
  { name: 'all-white-space', body: ' \n \n ' },
  { name: 'empty', body: '' },
  { name: 'bom-real', body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`<p>${inc('/f/a')}</p>`)]) },
  { name: 'bom-varnish', body: Buffer.concat([Buffer.from([0xeb, 0xbb, 0xbf]), Buffer.from(`<p>${inc('/f/a')}</p>`)]) },
  // e00010: other elements.
  { name: 'other-elements', body: `<p>a<b>x</b><i>y</i>${inc('/f/a')}</p>` },
  // e00017, e00003: nesting, req.esi_level, req_top.
  { name: 'nested', body: `<p>${inc('/f/nest')}</p>` },
  { name: 'loop', body: `<p>${inc('/f/loop')}</p>` },
  { name: 'echo', body: `<p>${inc('/f/echo/e1')}</p>`, request: { 'Accept-Encoding': 'gzip', 'If-None-Match': '"x"', Range: 'bytes=0-1', 'X-Client': 'c' } },
  { name: 'echo-nested', body: `<p>${inc('/f/echonest')}</p>` },
  // Fragment answers other than 200.
  { name: 'fragment-404', body: `<p>a${inc('/f/missing')}b</p>` },
  { name: 'fragment-503', body: `<p>a${inc('/f/fail503')}b</p>` },
  { name: 'fragment-empty', body: `<p>a${inc('/f/empty')}b</p>` },
  { name: 'fragment-uncacheable', body: `<p>a${inc('/f/private')}b</p>` },
  { name: 'onerror-continue', body: `<p>a${inc('/f/fail503', ' onerror="continue"')}b</p>` },
  { name: 'onerror-abort', body: `<p>a${inc('/f/fail503', ' onerror="abort"')}b</p>` },
  // The page's own head.
  { name: 'etag', body: `<p>${inc('/f/a')}</p>`, headers: { ETag: '"abc"' } },
  { name: 'head', body: `<p>${inc('/f/a')}</p>`, method: 'HEAD' },
  { name: 'range', body: `<p>${inc('/f/a')}</p>`, request: { Range: 'bytes=0-3' } },
  { name: 'not-do-esi', body: `<p>${inc('/f/a')}</p>`, plain: true },
  { name: 'status-404-page', body: `<p>${inc('/f/a')}</p>`, headers: { 'X-Status': '404' } },
]

/** The fragments: path -> [status, extra fields, body]. `esi` fragments are parsed too. */
export const fragments: Record<string, { status?: number; esi?: boolean; headers?: Record<string, string>; body: string }> = {
  '/f/a': { body: 'AAA' },
  '/f/b': { body: 'BBB' },
  '/c/dir/frag': { body: 'dirfrag' },
  '/c/dir/frag?q=1': { body: 'dirfrag-q' },
  '/c/frag': { body: 'parentfrag' },
  '/f/nest': { esi: true, body: `<n>${inc('/f/a')}</n>` },
  '/f/loop': { esi: true, body: `<l>${inc('/f/loop')}</l>` },
  '/f/echonest': { esi: true, body: `<n>${inc('/f/echo/deep')}</n>` },
  '/f/missing': { status: 404, body: 'not here' },
  '/f/fail503': { status: 503, body: 'broken' },
  '/f/empty': { body: '' },
  '/f/private': { headers: { 'Cache-Control': 'private' }, body: 'PRIV' },
}

export const pathOf = (c: EsiCase) => c.path ?? `/p/${c.name}`

/** The corpus's VCL: what an include's request carries goes to /f/echo; `X-Esi: 1` turns do_esi on. */
export const esiVcl = (port: number) => `vcl 4.1;
backend default { .host = "127.0.0.1"; .port = "${port}"; }
sub vcl_recv {
  set req.http.X-Lvl = req.esi_level;
  set req.http.X-Top = req_top.url;
}
sub vcl_backend_response {
  if (beresp.http.X-Esi) { set beresp.do_esi = true; }
}
`

const pages = new Map(esiCases.map((c) => [pathOf(c), c]))

/**
 * The corpus's origin: pages (with `X-Esi: 1` unless plain, which the tests' VCL turns into
 * beresp.do_esi), fragments, and `/f/echo*` answering with what its request carried.
 */
export function serveEsiCorpus(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/'
  if (url.startsWith('/f/echo')) {
    const h = req.headers
    res.writeHead(200, { 'Cache-Control': 'max-age=60', 'X-Esi': '1' })
    res.end(`[url=${url} host=${h.host} lvl=${h['x-lvl']} top=${h['x-top']} ae=${h['accept-encoding']} inm=${h['if-none-match']} range=${h.range} client=${h['x-client']}]`)
    return
  }
  const f = fragments[url]
  if (f !== undefined) {
    res.writeHead(f.status ?? 200, { 'Cache-Control': 'max-age=60', ...(f.esi ? { 'X-Esi': '1' } : {}), ...f.headers })
    res.end(f.body)
    return
  }
  const c = pages.get(url)
  if (c === undefined) {
    res.writeHead(404, { 'Cache-Control': 'max-age=60' })
    res.end(`no ${url}`)
    return
  }
  const { 'X-Status': status, ...headers } = c.headers ?? {}
  // With its length: varnishd's framing of a chunked miss depends on a race (README).
  const body = typeof c.body === 'string' ? Buffer.from(c.body, 'latin1') : c.body
  res.writeHead(Number(status ?? 200), {
    'Cache-Control': 'max-age=60',
    'Content-Length': String(body.length),
    ...(c.plain ? {} : { 'X-Esi': '1' }),
    ...headers,
  })
  res.end(body)
}
