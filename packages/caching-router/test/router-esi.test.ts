import assert from 'node:assert/strict'
import type http from 'node:http'
import net from 'node:net'
import { describe, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { get, latch, startOrigin } from './router-harness.js'
import { startVclRouter } from './router-vcl-harness.js'

// ESI in the router over real sockets (the corpus against varnishd is esi-differential.test.ts):
// includes as requests of their own with their own lookups and TTLs, the page streamed as
// fragments arrive, failures, depth, and the VCL variables.

const ESI_VCL = (port: number, extra = '') => `vcl 4.1;
backend default { .host = "127.0.0.1"; .port = "${port}"; }
sub vcl_backend_response { if (beresp.http.X-Esi || bereq.url == "/page") { set beresp.do_esi = true; } }
${extra}
`

type Pages = Record<string, { body: string; esi?: boolean; maxAge?: number } | ((res: http.ServerResponse) => void)>

async function origin(t: Parameters<typeof startOrigin>[0], pages: Pages) {
  const hits = new Map<string, number>()
  const o = await startOrigin(t, (req, res) => {
    const url = req.url ?? '/'
    hits.set(url, (hits.get(url) ?? 0) + 1)
    const p = pages[url]
    if (typeof p === 'function') return p(res)
    if (p === undefined) {
      res.writeHead(404)
      res.end('none')
      return
    }
    res.writeHead(200, { 'Cache-Control': `max-age=${p.maxAge ?? 60}`, ...(p.esi ? { 'X-Esi': '1' } : {}) })
    res.end(p.body)
  })
  return { port: o.address.port, hits: (url: string) => hits.get(url) ?? 0 }
}

describe('ESI in caching-router', () => {
  test('each include is looked up on its own: fragments keep their own TTLs', async (t) => {
    let n = 0
    const o = await origin(t, {
      '/page': { esi: true, body: '<p><esi:include src="/long"/>|<esi:include src="/short"/></p>' },
      '/long': { body: 'L', maxAge: 600 },
      '/short': (res) => {
        res.writeHead(200, { 'Cache-Control': 'max-age=2' })
        res.end(`S${++n}`)
      },
    })
    const r = await startVclRouter(ESI_VCL(o.port))
    t.after(() => r.stop())
    assert.equal((await get(`${r.url}/page`)).body, '<p>L|S1</p>')
    assert.equal((await get(`${r.url}/page`)).body, '<p>L|S1</p>')
    // Past its ttl and default_grace: a miss, fetched again.
    r.clock.advance(15_000)
    const third = await get(`${r.url}/page`)
    assert.equal(third.body, '<p>L|S2</p>')
    // The page and the long-lived fragment were fetched once; the short one again once stale.
    assert.deepEqual([o.hits('/page'), o.hits('/long'), o.hits('/short')], [1, 1, 2])
    assert.equal(third.headers['content-length'], undefined)
  })

  test('the page streams: what precedes a slow fragment reaches the client before it', async (t) => {
    const gate = latch()
    const o = await origin(t, {
      '/page': { esi: true, body: '<p>before <esi:include src="/slow"/> after</p>' },
      '/slow': (res) => {
        res.writeHead(200, { 'Cache-Control': 'max-age=60' })
        res.write('sl')
        // The fragment ends only once the client has seen the page's first bytes: a router
        // that assembled the whole page first would never answer (the test times out).
        void gate.wait.then(() => res.end('ow'))
      },
    })
    const r = await startVclRouter(ESI_VCL(o.port))
    t.after(() => r.stop())
    const body = await new Promise<string>((resolve, reject) => {
      const s = net.connect(r.port, '127.0.0.1')
      let got = ''
      s.setEncoding('latin1')
      s.on('data', (c: string) => {
        got += c
        if (got.includes('before ')) gate.open()
        if (got.endsWith('0\r\n\r\n')) s.end()
      })
      s.on('end', () => resolve(got))
      s.on('error', reject)
      s.write('GET /page HTTP/1.1\r\nHost: x\r\n\r\n')
    })
    const dechunked = body
      .slice(body.indexOf('\r\n\r\n') + 4)
      .split('\r\n')
      .filter((_l, i) => i % 2 === 1)
      .join('')
    assert.equal(dechunked, '<p>before slow after</p>')
  })

  // varnishtest e00035: a fragment whose fetch fails part way.
  for (const [src, expected, cut] of [
    ['<esi:include src="/fail"/>', 'before ', true],
    ['<esi:include src="/fail" onerror="continue"/>', 'before  after', false],
  ] as const) {
    test(`with esi_include_onerror, a failed fragment ${cut ? 'cuts the page off' : 'is left out with onerror="continue"'}`, async (t) => {
      const o = await origin(t, {
        '/page': { esi: true, body: `before ${src} after` },
        '/fail': (res) => {
          res.writeHead(200, { 'Content-Length': '100' })
          res.write('x')
          setImmediate(() => res.destroy())
        },
      })
      const r = await startVclRouter(ESI_VCL(o.port), 'boot.vcl', { feature: '+esi_disable_xml_check,+esi_include_onerror' })
      t.after(() => r.stop())
      const got = await rawGet(r.port, '/page')
      assert.equal(got.cut, cut)
      // The fragment's one byte before it broke is part of the page in varnishd too.
      assert.equal(got.body.replace('x', ''), expected)
    })
  }

  test('an include loop stops at max_esi_depth', async (t) => {
    const o = await origin(t, { '/loop': { esi: true, body: '<l><esi:include src="/loop"/></l>' } })
    const r = await startVclRouter(ESI_VCL(o.port), 'boot.vcl', { max_esi_depth: '2' })
    t.after(() => r.stop())
    assert.equal((await get(`${r.url}/loop`)).body, '<l><l><l></l></l></l>')
    r.router.params.set('max_esi_depth', '0')
    assert.equal((await get(`${r.url}/loop`)).body, '<l></l>')
  })

  test('resp.do_esi = false and obj.can_esi in vcl_deliver; req_top and esi_level in a fragment', async (t) => {
    const o = await origin(t, {
      '/page': { esi: true, body: '<p><esi:include src="/frag"/></p>' },
      '/frag': { esi: true, body: '<f/>' },
    })
    const vcl = `sub vcl_recv {
        if (req.esi_level > 0) {
          if (req_top.url == "/page" && req_top.method == "GET") { return (pipe); }
          return (synth(500));
        }
      }
      sub vcl_deliver {
        set resp.http.X-Can = obj.can_esi;
        if (req.http.X-Raw) { set resp.do_esi = false; }
      }`
    const r = await startVclRouter(ESI_VCL(o.port, vcl))
    t.after(() => r.stop())
    // A pipe from vcl_recv in an include is a pass (cnt_recv), so the fragment is included.
    const page = await get(`${r.url}/page`)
    assert.equal(page.body, '<p><f/></p>')
    assert.equal(page.headers['x-can'], 'true')
    const raw = await get(`${r.url}/page`, { headers: { 'X-Raw': '1' } })
    assert.equal(raw.body, '<p><esi:include src="/frag"/></p>')
    assert.equal(raw.headers['content-length'], String(raw.body.length))
  })

  // varnishtest e00032: a pass (gzip'ed) is ESI-processed too.
  test('a pass with do_esi is assembled, from a gzip body too', async (t) => {
    const o = await origin(t, {
      '/page': (res) => {
        res.writeHead(200, { 'Content-Encoding': 'gzip' })
        res.end(gzipSync('<p><esi:include src="/frag"/></p>'))
      },
      '/frag': { body: 'F' },
    })
    const r = await startVclRouter(ESI_VCL(o.port, 'sub vcl_recv { if (req.url == "/page") { return (pass); } }'))
    t.after(() => r.stop())
    assert.equal((await get(`${r.url}/page`)).body, '<p>F</p>')
    assert.equal((await get(`${r.url}/page`)).body, '<p>F</p>')
    assert.equal(o.hits('/page'), 2)
  })

  test('an uncacheable page with do_esi (hit-for-miss) is assembled each time', async (t) => {
    const o = await origin(t, {
      '/private': (res) => {
        res.writeHead(200, { 'Cache-Control': 'private', 'X-Esi': '1' })
        res.end('<p><esi:include src="/frag"/></p>')
      },
      '/frag': { body: 'F' },
    })
    const r = await startVclRouter(ESI_VCL(o.port))
    t.after(() => r.stop())
    assert.equal((await get(`${r.url}/private`)).body, '<p>F</p>')
    assert.equal((await get(`${r.url}/private`)).body, '<p>F</p>')
    assert.deepEqual([o.hits('/private'), o.hits('/frag')], [2, 1])
  })

  test('req.esi = false (VCL 4.0) delivers the stored page as it is', async (t) => {
    const o = await origin(t, { '/page': { esi: true, body: '<p><esi:include src="/frag"/></p>' } })
    const r = await startVclRouter(
      `vcl 4.0;\nbackend default { .host = "127.0.0.1"; .port = "${o.port}"; }
      sub vcl_recv { if (req.http.X-Raw) { set req.esi = false; } }
      sub vcl_backend_response { set beresp.do_esi = true; }`,
    )
    t.after(() => r.stop())
    assert.equal((await get(`${r.url}/page`, { headers: { 'X-Raw': '1' } })).body, '<p><esi:include src="/frag"/></p>')
    assert.equal((await get(`${r.url}/page`)).body, '<p>none</p>')
  })
})

/** A GET on a raw socket: the body as dechunked so far, and whether it ended without its last chunk. */
function rawGet(port: number, path: string): Promise<{ body: string; cut: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    let got = ''
    s.setEncoding('latin1')
    s.on('data', (c: string) => {
      got += c
      if (got.endsWith('\r\n0\r\n\r\n')) s.end()
    })
    s.on('close', () => {
      let rest = got.slice(got.indexOf('\r\n\r\n') + 4)
      let body = ''
      for (;;) {
        const eol = rest.indexOf('\r\n')
        if (eol === -1) break
        const size = Number.parseInt(rest.slice(0, eol), 16)
        if (!(size > 0) || rest.length < eol + 2 + size) break
        body += rest.slice(eol + 2, eol + 2 + size)
        rest = rest.slice(eol + 4 + size)
      }
      resolve({ body, cut: !got.endsWith('\r\n0\r\n\r\n') })
    })
    s.on('error', reject)
    s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
  })
}
