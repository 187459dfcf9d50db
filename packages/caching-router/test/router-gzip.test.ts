import assert from 'node:assert/strict'
import http from 'node:http'
import { describe, test } from 'node:test'
import zlib from 'node:zlib'
import { startOrigin } from './router-harness.js'
import { startVclRouter } from './router-vcl-harness.js'

// Compression in the router over real sockets (gzip-differential.test.ts holds it to
// varnishd): Accept-Encoding normalized for the lookup, one gzip object for every client,
// gzip_level, http_gzip_support off, and a decompression bomb.

const VCL = (port: number) => `vcl 4.1;
backend default { .host = "127.0.0.1"; .port = "${port}"; }
sub vcl_backend_response {
  if (bereq.url ~ "dogzip") { set beresp.do_gzip = true; }
  if (bereq.url ~ "dogunzip") { set beresp.do_gunzip = true; }
}
`

function fetchRaw(port: number, path: string, ae?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: ae === undefined ? {} : { 'Accept-Encoding': ae }, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

const TEXT = 'All work and no play makes Jack a dull boy. '.repeat(500)

describe('gzip in caching-router', () => {
  test('one gzip object serves every client, Vary: Accept-Encoding or not (as varnishd 7.1.1)', async (t) => {
    const seen: Array<string | undefined> = []
    const origin = await startOrigin(t, (req, res) => {
      seen.push(req.headers['accept-encoding'])
      res.writeHead(200, { 'Cache-Control': 'max-age=60', 'Content-Encoding': 'gzip', Vary: 'Accept-Encoding' })
      res.end(zlib.gzipSync(TEXT))
    })
    const r = await startVclRouter(VCL(origin.address.port))
    t.after(() => r.stop())
    for (const ae of ['gzip, deflate, br', 'br, gzip', 'gzip;q=0.5', 'deflate', undefined, 'identity']) {
      const got = await fetchRaw(r.port, '/page', ae)
      const gzip = ae?.includes('gzip') === true
      assert.equal(got.headers['content-encoding'], gzip ? 'gzip' : undefined, String(ae))
      assert.equal((gzip ? zlib.gunzipSync(got.body) : got.body).toString(), TEXT)
    }
    // One fetch, asked with gzip: varnishd's lookup does not split by Accept-Encoding either.
    assert.deepEqual(seen, ['gzip'])
  })

  test('do_gzip compresses at gzip_level; a plain client gets the inflated body with its length', async (t) => {
    const origin = await startOrigin(t, (_req, res) => {
      res.writeHead(200, { 'Cache-Control': 'max-age=60', 'Content-Length': String(TEXT.length) })
      res.end(TEXT)
    })
    const r = await startVclRouter(VCL(origin.address.port), 'boot.vcl', { gzip_level: '1' })
    t.after(() => r.stop())
    const fast = await fetchRaw(r.port, '/dogzip-1', 'gzip')
    r.router.params.set('gzip_level', '9')
    const best = await fetchRaw(r.port, '/dogzip-9', 'gzip')
    assert.equal(zlib.gunzipSync(fast.body).toString(), TEXT)
    assert.equal(zlib.gunzipSync(best.body).toString(), TEXT)
    assert.ok(best.body.length < fast.body.length, `level 9 (${best.body.length}) smaller than level 1 (${fast.body.length})`)
    // A plain client shares the object (do_gzip's Vary: Accept-Encoding splits nothing with
    // http_gzip_support): the inflated length is known once it is complete.
    await fetchRaw(r.port, '/dogzip-9')
    const plain = await fetchRaw(r.port, '/dogzip-9')
    assert.equal(plain.headers['content-encoding'], undefined)
    assert.equal(plain.headers['content-length'], String(TEXT.length))
    assert.equal(plain.body.toString(), TEXT)
  })

  test('http_gzip_support=off: the client\'s Accept-Encoding goes to the backend, no coding', async (t) => {
    const seen: Array<string | undefined> = []
    const origin = await startOrigin(t, (req, res) => {
      seen.push(req.headers['accept-encoding'])
      res.writeHead(200, { 'Cache-Control': 'max-age=60', Vary: 'Accept-Encoding' })
      res.end('plain')
    })
    const r = await startVclRouter(VCL(origin.address.port), 'boot.vcl', { http_gzip_support: 'off' })
    t.after(() => r.stop())
    const got = await fetchRaw(r.port, '/dogzip', 'br')
    assert.equal(got.headers['content-encoding'], undefined)
    assert.equal(got.body.toString(), 'plain')
    assert.deepEqual(seen, ['br'])
  })

  test('a decompression bomb is not inflated beyond the storage: the fetch fails, nothing is stored', async (t) => {
    // 64 MiB of zeros in about 64 KiB of gzip, against a 16 MiB store.
    const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 })
    let fetches = 0
    const origin = await startOrigin(t, (_req, res) => {
      fetches++
      res.writeHead(200, { 'Cache-Control': 'max-age=60', 'Content-Encoding': 'gzip', 'Content-Length': String(bomb.length) })
      res.end(bomb)
    })
    const r = await startVclRouter(VCL(origin.address.port))
    t.after(() => r.stop())
    const before = process.memoryUsage().arrayBuffers
    const first = await fetchRaw(r.port, '/dogunzip').catch(() => ({ status: 0, body: Buffer.alloc(0) }))
    assert.ok(first.status === 503 || first.body.length < 64 * 1024 * 1024, 'the bomb is not delivered whole')
    // Not stored: the next request fetches again.
    await fetchRaw(r.port, '/dogunzip').catch(() => {})
    assert.equal(fetches, 2)
    assert.ok(r.router.store.bytes < 16 * 1024 * 1024)
    assert.ok(process.memoryUsage().arrayBuffers - before < 48 * 1024 * 1024, 'memory stays under the inflated size')
  })
})
