import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import type { StaticServer } from '../src/index.js'
import { get, hasNginx, makeFixtures, NGINX, type RawResponse, startBoth, startEcho } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'

/**
 * The same nginx.conf under real nginx and under static-server, the same requests to both:
 * status, the headers a client acts on, and bodies must match. Where we are stricter on
 * purpose (DIFFERENCES.md) the case says what we answer and that nginx does not serve it.
 */
function config(dir: string, port: number, up: number, pid: string): string {
  const root = join(dir, 'root')
  return `${httpHead(dir, port, pid)}
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 5;
    upstream app {
        server 127.0.0.1:${up};
        keepalive 4;
    }
    server {
        listen 127.0.0.1:${port} default_server;
        server_name localhost;
        root ${root};
        client_max_body_size 1k;

        location = / { proxy_pass http://app; }
        location / { try_files $uri $uri/ @proxy; }
        location @proxy { proxy_pass http://app; }
        location /static/ { alias ${root}/dir/; }
        location /offbyslash { alias ${root}/dir/; }
        location /noslash { alias ${root}/sub; }
        location /sibling { alias ${root}/a; }
        location /nestalias/ { alias ${root}/; location /nestalias/sub/ { } }
        location /rwargs2/ { rewrite ^/rwargs2/(.*)$ /a.txt?n=$1 redirect; }
        location /rwargs3/ { rewrite ^/rwargs3/(.*)$ /a.txt?n=$1? redirect; }
        location ^~ /pre/ { return 200 "prefix $uri\\n"; }
        location ~ \\.php$ { return 403; }
        location ~* \\.(png|jpg)$ { add_header X-Img yes; expires 1h; }
        location /plain/ { autoindex on; }
        location /plainu8/ { autoindex on; charset utf-8; alias ${root}/plain/; }
        location /noindex/ { }
        location /err/ { error_page 404 /errors/404.html; }
        location /errcode/ { error_page 404 =200 /errors/404.html; }
        location /errnamed/ { error_page 404 = @proxy; }
        location /rw/ { rewrite ^/rw/(.*)$ /$1 last; }
        location /rwargs/ { rewrite ^/rwargs/(.*)$ /api/$1?x=1 last; }
        location /redir/ { rewrite ^/redir/(.*)$ /new/$1 permanent; }
        location /redir2/ { rewrite ^ http://example.com/x redirect; }
        location /ret/ { return 301 /a.txt; }
        location /ret302/ { return http://example.com/; }
        location /api/ { proxy_pass http://app/backend/; }
        location /raw/ { proxy_pass http://app; }
        location /tf/ { try_files /nope $uri =404; }
        location /tf2/ { try_files $uri /a.txt; }
        location /tfdir/ { try_files $uri/ =403; }
        location /sym/ { disable_symlinks on; }
        location /gz/ { gzip_static on; }
        location /gzalways/ { gzip_static always; alias ${root}/gz/; }
        location = /exact { return 204; }
        location /exact { return 200 "prefix exact\\n"; }
        location /hdr/ { add_header X-A 1; add_header X-B 2 always; return 200 "hdr\\n"; }
        location /hdr404/ { add_header X-A 1; add_header X-B 2 always; }
        location /nested/ {
            location /nested/deep/ { return 200 "deep\\n"; }
            location ~ \\.txt$ { return 200 "nested regex\\n"; }
            return 200 "nested\\n";
        }
        location /types/ {
            types { text/x-special sp; }
            default_type text/x-default;
            alias ${root}/;
        }
        location /etagoff/ { etag off; alias ${root}/; }
        location /imsbefore/ { if_modified_since before; alias ${root}/; }
        location /e418 { return 418; }
        location /hdrs/ {
            proxy_pass http://app;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Empty "";
        }
        location /srverr/ { error_page 404 502 = @fallback; proxy_pass http://127.0.0.1:1; }
        location @fallback { return 200 "fallback $uri\n"; }
        location ~ ^/cap2/(\\w+)$ { return 200 "cap2 $1 $uri\\n"; }
        location /always/ { add_header X-A 1 always; return 404; }
        location /retbody/ { return 404 "gone $uri\n"; }
        location /capture/ { rewrite ^/capture/(\\w+)/(\\w+)$ /$2/$1 break; return 200 "captured $uri $1 $2\n"; }
    }
    server {
        listen 127.0.0.1:${port};
        server_name vhost.test *.wild.test .dot.test www.trail.*;
        location / { return 200 "vhost $host\\n"; }
    }
    server {
        listen 127.0.0.1:${port};
        server_name ~^(\\w+)\\.re\\.test$;
        location / { return 200 "regex $1\\n"; }
    }
}
`
}

interface Case {
  name: string
  path: string
  method?: string
  headers?: Record<string, string>
  body?: string
  /** Sent as it is instead of a request built from the fields above. */
  raw?: string
  /** A documented difference: our status; nginx must not answer 2xx to it. */
  stricter?: number
}

function corpus(lm: string, etag: string, bigEtag: string): Case[] {
  const c: Case[] = []
  const files = ['/a.txt', '/index.html', '/dir/x.css', '/sub/index.html', '/data.json', '/img.PNG', '/big.bin', '/empty.txt', '/space%20name.txt', '/%C3%BCn%C3%AF.txt', '/.hidden', '/link-a.txt']
  for (const f of files) {
    c.push({ name: `GET ${f}`, path: f })
    c.push({ name: `HEAD ${f}`, path: f, method: 'HEAD' })
  }
  for (const p of ['/', '/sub', '/sub/', '/dir', '/dir/', '/plain/', '/plain', '/noindex/', '/noindex', '/missing', '/missing/', '/sub?x=1', '/sub/index.html?q=2']) {
    c.push({ name: `dir ${p}`, path: p })
  }
  for (const m of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
    c.push({ name: `${m} file`, path: '/a.txt', method: m, headers: { 'Content-Length': '0' } })
    c.push({ name: `${m} dir`, path: '/noindex/', method: m, headers: { 'Content-Length': '0' } })
  }
  const ranges = ['bytes=0-9', 'bytes=10-', 'bytes=-5', 'bytes=0-0', 'bytes=5-500', 'bytes=200-300', 'bytes=-500', 'bytes=0-1,5-6', 'bytes=0-1,3-4,8-9', 'bytes=9-5', 'bytes=x-y', 'bytes=0-1000,0-1000', 'BYTES=0-3', 'items=0-3', 'bytes=108-', 'bytes=107-', 'bytes=-0', 'bytes= 1-2']
  for (const r of ranges) c.push({ name: `range ${r}`, path: '/a.txt', headers: { Range: r } })
  c.push({ name: 'range big', path: '/big.bin', headers: { Range: 'bytes=100000-100099' } })
  c.push({ name: 'range big multi', path: '/big.bin', headers: { Range: 'bytes=0-9,200000-200009' } })
  c.push({ name: 'range empty file', path: '/empty.txt', headers: { Range: 'bytes=0-1' } })
  c.push({ name: 'if-range etag ok', path: '/a.txt', headers: { Range: 'bytes=0-3', 'If-Range': etag } })
  c.push({ name: 'if-range etag stale', path: '/a.txt', headers: { Range: 'bytes=0-3', 'If-Range': '"0-0"' } })
  c.push({ name: 'if-range date ok', path: '/a.txt', headers: { Range: 'bytes=0-3', 'If-Range': lm } })
  c.push({ name: 'if-range date stale', path: '/a.txt', headers: { Range: 'bytes=0-3', 'If-Range': 'Mon, 01 Jan 2001 00:00:00 GMT' } })
  c.push({ name: 'inm match', path: '/a.txt', headers: { 'If-None-Match': etag } })
  c.push({ name: 'inm weak match', path: '/a.txt', headers: { 'If-None-Match': `W/${etag}` } })
  c.push({ name: 'inm list', path: '/a.txt', headers: { 'If-None-Match': `"x", ${etag}` } })
  c.push({ name: 'inm star', path: '/a.txt', headers: { 'If-None-Match': '*' } })
  c.push({ name: 'inm other', path: '/a.txt', headers: { 'If-None-Match': '"nope"' } })
  c.push({ name: 'ims equal', path: '/a.txt', headers: { 'If-Modified-Since': lm } })
  c.push({ name: 'ims older', path: '/a.txt', headers: { 'If-Modified-Since': 'Mon, 01 Jan 2001 00:00:00 GMT' } })
  c.push({ name: 'ims newer', path: '/a.txt', headers: { 'If-Modified-Since': 'Mon, 01 Jan 2035 00:00:00 GMT' } })
  c.push({ name: 'ims garbage', path: '/a.txt', headers: { 'If-Modified-Since': 'yesterday' } })
  c.push({ name: 'ims+inm both', path: '/a.txt', headers: { 'If-Modified-Since': lm, 'If-None-Match': etag } })
  c.push({ name: 'ims ok inm no', path: '/a.txt', headers: { 'If-Modified-Since': lm, 'If-None-Match': '"no"' } })
  c.push({ name: 'ims before newer', path: '/imsbefore/a.txt', headers: { 'If-Modified-Since': 'Mon, 01 Jan 2035 00:00:00 GMT' } })
  c.push({ name: 'etag off', path: '/etagoff/a.txt' })
  c.push({ name: 'etag off inm', path: '/etagoff/a.txt', headers: { 'If-None-Match': etag } })
  c.push({ name: 'if-match ok', path: '/a.txt', headers: { 'If-Match': etag } })
  c.push({ name: 'if-match fail', path: '/a.txt', headers: { 'If-Match': '"no"' } })
  c.push({ name: 'ius old', path: '/a.txt', headers: { 'If-Unmodified-Since': 'Mon, 01 Jan 2001 00:00:00 GMT' } })
  c.push({ name: 'ius equal', path: '/a.txt', headers: { 'If-Unmodified-Since': lm } })
  c.push({ name: 'inm big', path: '/big.bin', headers: { 'If-None-Match': bigEtag } })
  // Dates as ngx_parse_http_time reads them: case-sensitive months, the weekday unread, anything
  // after the time ignored, and an unreadable If-Unmodified-Since failing (412).
  const [wd, dd, mon, yyyy, hms] = lm.split(' ') as [string, string, string, string, string]
  const rfc850 = `${wd.slice(0, -1)}day, ${dd}-${mon}-${yyyy.slice(2)} ${hms} GMT`
  const asctime = `${wd.slice(0, -1)} ${mon} ${dd.replace(/^0/, ' ')} ${hms} ${yyyy}`
  c.push({ name: 'ims rfc850', path: '/a.txt', headers: { 'If-Modified-Since': rfc850 } })
  c.push({ name: 'ims asctime', path: '/a.txt', headers: { 'If-Modified-Since': asctime } })
  c.push({ name: 'ims lower-case', path: '/a.txt', headers: { 'If-Modified-Since': lm.toLowerCase() } })
  c.push({ name: 'ims with IE length', path: '/a.txt', headers: { 'If-Modified-Since': `${lm}; length=108` } })
  c.push({ name: 'ims no weekday check', path: '/a.txt', headers: { 'If-Modified-Since': `Xyz${lm.slice(3)}` } })
  c.push({ name: 'ims Feb 30', path: '/a.txt', headers: { 'If-Modified-Since': 'Fri, 30 Feb 2024 00:00:00 GMT' } })
  c.push({ name: 'ius garbage', path: '/a.txt', headers: { 'If-Unmodified-Since': 'garbage' } })
  c.push({ name: 'ius rfc850', path: '/a.txt', headers: { 'If-Unmodified-Since': rfc850 } })
  c.push({ name: 'if-range rfc850', path: '/a.txt', headers: { Range: 'bytes=0-3', 'If-Range': rfc850 } })
  c.push({ name: 'if-range weak etag', path: '/a.txt', headers: { Range: 'bytes=0-3', 'If-Range': `W/${etag}` } })
  c.push({ name: 'range bytes= alone', path: '/a.txt', headers: { Range: 'bytes=' } })
  // The range filter's 416 comes after add_header and expires ran on the 200.
  c.push({ name: 'range unsatisfiable under add_header and expires', path: '/img.PNG', headers: { Range: 'bytes=500-' } })
  c.push({ name: 'POST to an autoindex directory', path: '/plain/', method: 'POST', headers: { 'Content-Length': '0' } })
  // Traversal and encoding: nginx normalizes these too; none may leave the root.
  for (const p of ['/../a.txt', '/sub/../a.txt', '/sub/./index.html', '/%2e%2e/a.txt', '/sub/%2e%2e/a.txt', '/sub/..%2fa.txt', '/sub%2f..%2fa.txt', '/%2E%2E/%2E%2E/etc/passwd', '/../../etc/passwd', '/sub/../../a.txt', '//a.txt', '///sub//index.html', '/a.txt/', '/a.txt/.', '/sub/.', '/sub/..', '/%61.txt', '/a%2etxt', '/static/../a.txt', '/static/x.css', '/static/', '/static', '/static/%2e%2e/a.txt', '/./a.txt', '/a.txt?../../etc/passwd', '/a.txt#frag']) {
    c.push({ name: `path ${p}`, path: p })
  }
  c.push({ name: 'nul', path: '/a.txt%00.html' })
  c.push({ name: 'bad escape', path: '/a%zz.txt' })
  c.push({ name: 'backslash', path: '/sub\\..\\a.txt', stricter: 400 })
  c.push({ name: 'encoded backslash', path: '/sub%5c..%5ca.txt', stricter: 400 })
  c.push({ name: 'overlong dot', path: '/%c0%ae%c0%ae/a.txt', stricter: 400 })
  c.push({ name: 'overlong slash', path: '/sub%c0%af..%c0%afa.txt', stricter: 400 })
  // alias "off-by-slash": nginx serves files beside the aliased directory; we never do.
  c.push({ name: 'alias off-by-slash', path: '/offbyslash../a.txt', stricter: 404 })
  c.push({ name: 'alias off-by-slash dotfile', path: '/offbyslash../.hidden', stricter: 404 })
  c.push({ name: 'alias off-by-slash directory', path: '/offbyslash../', stricter: 404 })
  c.push({ name: 'alias without slash, a sibling file', path: '/sibling.txt', stricter: 404 })
  c.push({ name: 'autoindex under charset utf-8', path: '/plainu8/' })
  for (const p of ['/nestalias/sub/', '/nestalias/sub/index.html', '/rwargs2/zz?b=1', '/rwargs2/zz', '/rwargs3/zz?b=1']) c.push({ name: `more ${p}`, path: p })
  for (const p of ['/offbyslash/x.css', '/offbyslash/', '/offbyslash', '/noslash/index.html', '/noslash/', '/noslash']) c.push({ name: `alias ${p}`, path: p })
  // Locations and their features.
  for (const p of ['/pre/x', '/pre/', '/x.php', '/sub/x.php', '/X.PHP', '/img.png', '/img.PNG', '/nope.jpg', '/err/missing', '/err/here.txt', '/errcode/missing', '/errnamed/missing', '/rw/a.txt', '/rw/sub/', '/rw/missing', '/rwargs/z?y=2', '/redir/q', '/redir/q?k=v', '/redir2/anything?k=v', '/ret/', '/ret302/', '/api/thing?x=1', '/api/', '/api/a%20b', '/raw/thing?y=2', '/raw/a%20b', '/tf/found.txt', '/tf/missing', '/tf2/missing', '/tf2/', '/tfdir/', '/tfdir/x', '/sym/real.txt', '/sym/inside.txt', '/sym/outside.txt', '/gz/app.js', '/exact', '/exact/', '/exactly', '/hdr/', '/hdr404/missing', '/nested/', '/nested/deep/x', '/nested/a.txt', '/nested/deep/a.txt', '/types/x.sp', '/types/a.txt', '/types/img.PNG', '/e418', '/?q=1', '/missing-to-proxy', '/status/503']) {
    c.push({ name: `loc ${p}`, path: p })
  }
  c.push({ name: 'proxy_set_header', path: '/hdrs/x?y=1', headers: { Host: 'localhost:1234', 'X-Forwarded-For': '198.51.100.7', 'X-Empty': 'client', TE: 'trailers', 'Keep-Alive': '5' } })
  c.push({ name: 'proxy_set_header no xff', path: '/hdrs/z' })
  for (const p of ['/cap2/xyz', '/cap2/x/y', '/srverr/x', '/always/', '/retbody/q', '/capture/ab/cd', '/capture/x']) c.push({ name: `more ${p}`, path: p })
  c.push({ name: 'gzip_static accepted', path: '/gz/app.js', headers: { 'Accept-Encoding': 'gzip, deflate' } })
  // Accept-Encoding as ngx_http_gzip_accept_encoding reads it; gzip_proxied off refuses a Via.
  for (const ae of ['gzip;q=0', 'GZIP', 'x-gzip', 'deflate, gzip ; q=0.5', 'gzip;q=1.5', 'gzip;q=0.000', 'br,gzip', 'gzipx']) {
    c.push({ name: `gzip_static with ${ae}`, path: '/gz/app.js', headers: { 'Accept-Encoding': ae } })
  }
  c.push({ name: 'gzip_static always, without Accept-Encoding', path: '/gzalways/app.js' })
  c.push({ name: 'gzip_static behind a proxy (Via)', path: '/gz/app.js', headers: { 'Accept-Encoding': 'gzip', Via: '1.1 varnish' } })
  c.push({ name: 'head proxy', path: '/raw/h', method: 'HEAD' })
  c.push({ name: 'post proxy', path: '/raw/p', method: 'POST', headers: { 'Content-Length': '5' }, body: 'hello' })
  c.push({ name: 'post too large', path: '/raw/p', method: 'POST', headers: { 'Content-Length': '2000' }, body: 'x'.repeat(2000) })
  c.push({ name: 'chunked post small', path: '/raw/c', method: 'POST', headers: { 'Transfer-Encoding': 'chunked' }, body: '5\r\nhello\r\n0\r\n\r\n' })
  c.push({ name: 'chunked post too large', path: '/raw/c', method: 'POST', headers: { 'Transfer-Encoding': 'chunked' }, body: `7d0\r\n${'x'.repeat(2000)}\r\n0\r\n\r\n` })
  c.push({ name: 'post file', path: '/a.txt', method: 'POST', headers: { 'Content-Length': '2' }, body: 'hi' })
  // Virtual hosts.
  for (const h of ['vhost.test', 'VHOST.test', 'vhost.test.', 'vhost.test:80', 'a.wild.test', 'a.b.wild.test', 'wild.test', 'dot.test', 'x.dot.test', 'www.trail.org', 'abc.re.test', 'a.b.re.test', 'unknown.test', '127.0.0.1', 'localhost']) {
    c.push({ name: `host ${h}`, path: '/vh', headers: { Host: h } })
  }
  c.push({ name: 'host bad', path: '/a.txt', headers: { Host: 'a/b' } })
  c.push({ name: 'host dotdot', path: '/a.txt', headers: { Host: 'a..b' } })
  // Malformed requests.
  c.push({ name: 'http/1.0 no host', path: '/a.txt', headers: { Host: '' } })
  c.push({ name: 'empty Host', path: '/a.txt', raw: 'GET /a.txt HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n' })
  c.push({ name: 'Host of a port only', path: '/a.txt', raw: 'GET /a.txt HTTP/1.1\r\nHost: :80\r\nConnection: close\r\n\r\n' })
  // Fields nginx takes once: a second copy is a 400 even with the same value; others may repeat.
  for (const f of ['If-None-Match: "a"', 'If-Modified-Since: x', 'If-Unmodified-Since: x', 'If-Match: "a"', 'If-Range: "a"', 'Expect: x', 'Authorization: x', 'Content-Range: x', 'Content-Length: 0', 'Range: bytes=0-1', 'Cookie: a=1']) {
    c.push({ name: `twice ${f}`, path: '/a.txt', raw: `GET /a.txt HTTP/1.1\r\nHost: localhost\r\n${f}\r\n${f}\r\nConnection: close\r\n\r\n` })
  }
  c.push({ name: 'Host not ASCII', path: '/a.txt', raw: 'GET /a.txt HTTP/1.1\r\nHost: \xfc.test\r\nConnection: close\r\n\r\n', stricter: 400 })
  // Each field line must fit one large_client_header_buffers buffer (8k by default).
  const long = `GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX-Long: ${'v'.repeat(9000)}\r\nConnection: close\r\n\r\n`
  c.push({ name: 'a field line over 8k', path: '/a.txt', raw: long })
  return c
}

async function send(addr: HostPort, k: Case): Promise<RawResponse> {
  const headers: Record<string, string> = { ...k.headers }
  if (k.raw !== undefined) {
    const { rawRequest, parseResponse } = await import('./helpers.js')
    return parseResponse(await rawRequest(addr, k.raw))
  }
  if (headers.Host === '') {
    const { rawRequest, parseResponse } = await import('./helpers.js')
    return parseResponse(await rawRequest(addr, `${k.method ?? 'GET'} ${k.path} HTTP/1.0\r\n\r\n`))
  }
  if (k.body === undefined) return get(addr, k.path, headers, k.method ?? 'GET')
  const { rawRequest, parseResponse } = await import('./helpers.js')
  let req = `${k.method} ${k.path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n`
  for (const [n, v] of Object.entries(headers)) req += `${n}: ${v}\r\n`
  return parseResponse(await rawRequest(addr, `${req}\r\n${k.body}`))
}

const COMPARED = ['content-type', 'content-length', 'location', 'etag', 'last-modified', 'content-range', 'accept-ranges', 'cache-control', 'content-encoding', 'x-img', 'x-a', 'x-b', 'x-upstream']

function normalizeBody(r: RawResponse, port: number): string {
  let b = r.body.toString('latin1')
  const ct = r.headers.get('content-type') ?? ''
  const m = /boundary=(\S+)/.exec(ct)
  if (m) b = b.replaceAll(m[1] as string, 'BOUNDARY')
  b = b.replaceAll('<hr><center>nginx</center>', '<hr><center>static-server</center>')
  return b.replaceAll(String(port), 'PORT')
}

function normalizeHeaders(r: RawResponse, port: number): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {}
  for (const h of COMPARED) {
    let v = r.headers.get(h)
    if (v !== undefined) v = v.replaceAll(String(port), 'PORT').replace(/boundary=\S+/, 'boundary=B')
    out[h] = v
  }
  // Our error pages name us, not nginx: same shape, other length (DIFFERENCES.md).
  // nginx buffers upstream answers and re-frames them: framing is not what is compared there.
  if (r.headers.has('x-upstream')) out['content-length'] = undefined
  if (r.headers.get('content-type') === 'text/html' && r.status >= 300 && r.body.includes('<hr><center>')) out['content-length'] = 'page'
  return out
}

describe('differential: static-server and real nginx on the same nginx.conf', { skip: hasNginx ? false : `${NGINX} is not installed` }, () => {
  let dir: string
  let echo: Awaited<ReturnType<typeof startEcho>>
  let nginx: ChildProcess | undefined
  let ours: StaticServer
  let ourAddr: HostPort
  let theirAddr: HostPort
  let cases: Case[] = []

  before(async () => {
    dir = await makeFixtures()
    // autoindex: nginx cuts long names by bytes unless `charset utf-8`, and escapes ' in hrefs.
    for (const name of ["ap'os.txt", `${'é'.repeat(49)}.txt`, `${'x'.repeat(60)}.txt`]) await writeFile(join(dir, 'root/plain', name), 'z')
    echo = await startEcho()
    ;({ nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, echo.port, pid)))
    const st = await stat(join(dir, 'root/a.txt'))
    const big = await stat(join(dir, 'root/big.bin'))
    const et = (s: typeof st) => `"${Math.floor(s.mtimeMs / 1000).toString(16)}-${s.size.toString(16)}"`
    cases = corpus(st.mtime.toUTCString(), et(st), et(big))
  })

  after(async () => {
    nginx?.kill('SIGTERM')
    await ours?.close({ drainTimeoutMs: 100 })
    await echo?.close()
  })

  test('the corpus has at least 150 requests', () => {
    assert.ok(cases.length >= 150, `only ${cases.length}`)
  })

  test('the corpus exercises what it claims (spot checks on our answers)', async () => {
    // `rewrite ... break` also stops `return`: the static module then looks for /cd/ab.
    assert.equal((await get(ourAddr, '/capture/ab/cd')).status, 404)
    assert.equal((await get(ourAddr, '/cap2/xyz')).body.toString(), 'cap2 xyz /cap2/xyz\n')
    assert.equal((await get(ourAddr, '/srverr/x')).body.toString(), 'fallback /srverr/x\n')
    assert.match((await get(ourAddr, '/hdrs/z')).body.toString(), /host=localhost up=- xff=127\.0\.0\.1 empty=- te=- ka=-/)
    assert.equal((await get(ourAddr, '/a.txt', { Range: 'bytes=0-1,5-6' })).status, 206)
  })

  test('every request gets the same answer from both', async () => {
    const failures: string[] = []
    for (const k of cases) {
      const [a, b] = await Promise.all([send(ourAddr, k), send(theirAddr, k)])
      if (k.stricter !== undefined) {
        if (a.status !== k.stricter) failures.push(`${k.name}: ours ${a.status}, expected ${k.stricter}`)
        continue
      }
      if (a.status !== b.status) {
        failures.push(`${k.name}: status ours ${a.status} nginx ${b.status}`)
        continue
      }
      const ha = normalizeHeaders(a, ourAddr.port)
      const hb = normalizeHeaders(b, theirAddr.port)
      try {
        assert.deepEqual(ha, hb)
      } catch {
        failures.push(`${k.name}: headers ours ${JSON.stringify(ha)} nginx ${JSON.stringify(hb)}`)
        continue
      }
      const ba = normalizeBody(a, ourAddr.port)
      const bb = normalizeBody(b, theirAddr.port)
      if (ba !== bb) failures.push(`${k.name}: body ours ${JSON.stringify(ba.slice(0, 200))} nginx ${JSON.stringify(bb.slice(0, 200))}`)
    }
    assert.deepEqual(failures, [], `${failures.length} of ${cases.length} differ:\n${failures.join('\n')}`)
  })
})
