import assert from 'node:assert/strict'
import net, { type AddressInfo } from 'node:net'
import { describe, type TestContext, test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { exchange, get, startOrigin, startRouter } from './router-harness.js'

// RFC 9111 points where the router follows the RFC, each against a real origin on loopback.

describe('caching-router: RFC 9111 delta-seconds (§1.2.2, §4.2.1, §5.1)', () => {
  test('max-age that is not delta-seconds makes the response stale, not heuristically fresh', async (t) => {
    const origin = await startOrigin(t, (req, res, n) => {
      const cc: Record<string, string> = {
        '/decimal': 'max-age=1.5',
        '/zero-point': 'max-age=0.0',
        '/negative': 'max-age=-1',
        '/s-decimal': 's-maxage=30.0, max-age=60',
        '/quoted': 'max-age="60"',
        '/first': 'max-age=60, max-age=0',
      }
      res.setHeader('Cache-Control', cc[req.url ?? ''] ?? 'max-age=60')
      res.end(`${req.url} ${n}`)
    })
    const { url } = await startRouter(t, origin.address, { params: { default_grace: '0' } })
    for (const path of ['/decimal', '/zero-point', '/negative', '/s-decimal']) {
      assert.equal((await get(`${url}${path}`)).body.startsWith(path), true)
      const again = await get(`${url}${path}`)
      assert.equal(again.headers.age, '0', `${path}: a stale copy is not served`)
      assert.notEqual(again.body, (await get(`${url}${path}`)).body, `${path}: each request goes to the origin`)
    }
    // §5.2: the quoted form of an argument is accepted; §4.2.1: the first occurrence is used.
    for (const path of ['/quoted', '/first']) {
      const first = await get(`${url}${path}`)
      assert.equal((await get(`${url}${path}`)).body, first.body, `${path}: stored and fresh`)
    }
  })

  test('Age that is not delta-seconds is ignored; a huge one is taken as 2^31', async (t) => {
    const origin = await startOrigin(t, (req, res, n) => {
      res.setHeader('Cache-Control', 'max-age=60')
      res.setHeader('Age', req.url === '/huge' ? '99999999999999999999' : '30.5')
      res.end(`${req.url} ${n}`)
    })
    const { url } = await startRouter(t, origin.address, { params: { default_grace: '0' } })
    const first = await get(`${url}/decimal-age`)
    assert.equal((await get(`${url}/decimal-age`)).body, first.body, 'fresh: the Age was ignored')
    const huge = await get(`${url}/huge`)
    assert.notEqual((await get(`${url}/huge`)).body, huge.body, 'an Age beyond max-age leaves it stale')
  })
})

/** Marks a `later` answer the origin closes the connection after, cut short. */
const CUT = '<cut>'

/** A raw origin: the first request gets `first`, every later one `later` (or a close). */
async function rawOrigin(t: TestContext, first: string, later: string | undefined): Promise<HostPort> {
  let n = 0
  const server = net.createServer((s) => {
    s.on('error', () => {})
    let buf = ''
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1')
      if (!buf.includes('\r\n\r\n')) return
      buf = ''
      n++
      if (n === 1) s.write(first)
      else if (later === undefined) s.destroy()
      else if (later.endsWith(CUT)) s.end(later.slice(0, -CUT.length))
      else s.write(later)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => {
    server.close()
  })
  return { host: '127.0.0.1', port: (server.address() as AddressInfo).port }
}

describe('caching-router: a stale copy for an origin that fails (RFC 5861, RFC 9111 §4.2.4)', () => {
  const stored = 'HTTP/1.1 200 OK\r\nCache-Control: max-age=1, stale-if-error=60\r\nETag: "a"\r\nContent-Length: 5\r\n\r\nstale'
  for (const [name, later] of [
    ['closes the connection without a response', undefined],
    ['sends half a head and closes', `HTTP/1.1 200 OK\r\nContent-Le${CUT}`],
    ['answers 503', 'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown'],
    ['answers 500', 'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\ndown'],
  ] as const) {
    test(`stale-if-error: the origin ${name}`, async (t) => {
      const origin = await rawOrigin(t, stored, later)
      const { url, clock } = await startRouter(t, origin, { params: { default_grace: '0' } })
      assert.equal((await get(`${url}/s`)).body, 'stale')
      clock.advance(2100)
      const r = await get(`${url}/s`)
      assert.equal(r.status, 200)
      assert.equal(r.body, 'stale')
    })
  }

  test('past stale-if-error, the origin closing without a response is a 503', async (t) => {
    const origin = await rawOrigin(t, stored, undefined)
    const { url, clock } = await startRouter(t, origin, { params: { default_grace: '0', default_keep: '120' } })
    assert.equal((await get(`${url}/s`)).body, 'stale')
    clock.advance(70_000)
    assert.equal((await get(`${url}/s`)).status, 503)
  })
})

describe('caching-router: a 200 with Content-Range is complete (RFC 9110 §14.4, RFC 9111 §3)', () => {
  test('stored and served whole; a Range on it gets one Content-Range', async (t) => {
    const origin = await startOrigin(t, (req, res, n) => {
      res.setHeader('Cache-Control', 'max-age=60')
      res.setHeader('Content-Range', 'bytes 0-9/10')
      res.end(`${n}23456789`.slice(0, 10).padEnd(10, 'x'))
      void req
    })
    const { address, url } = await startRouter(t, origin.address)
    const first = await get(`${url}/cr`)
    assert.equal(first.status, 200)
    const again = await get(`${url}/cr`)
    assert.equal(again.body, first.body, 'a hit: stored as a complete response')
    assert.equal(origin.seen.length, 1)
    const raw = await exchange(address, 'GET /cr HTTP/1.1\r\nHost: a\r\nRange: bytes=2-3\r\nConnection: close\r\n\r\n')
    assert.match(raw, /^HTTP\/1\.1 206 /)
    assert.equal(raw.match(/\r\nContent-Range:/gi)?.length, 1, raw)
    assert.match(raw, /\r\nContent-Range: bytes 2-3\/10\r\n/i)
    assert.match(raw, /\r\n\r\n34$/)
  })
})

describe('caching-router: 1xx interim responses from the origin (RFC 9110 §15.2)', () => {
  const early = 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n'
  const final = 'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok'

  test('103 Early Hints is relayed to an HTTP/1.1 client before the final response, and never cached', async (t) => {
    const origin = await rawOrigin(t, early + final, early + final)
    const { address } = await startRouter(t, origin)
    const miss = await exchange(address, 'GET /eh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    assert.match(miss, /^HTTP\/1\.1 103 Early Hints\r\nLink: <\/a\.css>; rel=preload\r\n\r\nHTTP\/1\.1 200 OK\r\n/)
    assert.match(miss, /\r\n\r\nok$/)
    const hit = await exchange(address, 'GET /eh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    assert.match(hit, /^HTTP\/1\.1 200 OK\r\n/, 'the hit has no interim response')
    assert.doesNotMatch(hit, /Link:/)
  })

  test('an HTTP/1.0 client gets no 1xx; a pass relays them too', async (t) => {
    const origin = await rawOrigin(t, early + final, early + final)
    const { address } = await startRouter(t, origin)
    const old = await exchange(address, 'GET /eh HTTP/1.0\r\nHost: a\r\n\r\n')
    assert.match(old, /^HTTP\/1\.1 200 OK\r\n/)
    const pass = await exchange(address, 'POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
    assert.match(pass, /^HTTP\/1\.1 103 Early Hints\r\n/)
  })

  test('a 1xx flood fails the fetch: 503, as varnishd answers any 1xx', async (t) => {
    const flood = 'HTTP/1.1 102 Processing\r\n\r\n'.repeat(200)
    const origin = await rawOrigin(t, flood + final, flood + final)
    const { address } = await startRouter(t, origin)
    const raw = await exchange(address, 'GET /flood HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    const finals = raw.match(/HTTP\/1\.1 \d+/g) ?? []
    assert.equal(finals.at(-1), 'HTTP/1.1 503')
    assert.ok(finals.length <= 17, `at most 16 interims relayed, got ${finals.length - 1}`)
  })
})

describe('caching-router: any status with explicit freshness is storable (RFC 9111 §3)', () => {
  test('299, 303, 418 and 503 with max-age, and a 402 with public, are stored; without, they are not', async (t) => {
    const statuses: Record<string, [number, string | undefined]> = {
      '/299': [299, 'max-age=60'],
      '/303': [303, 'max-age=60'],
      '/418': [418, 's-maxage=60'],
      '/503': [503, 'max-age=60'],
      '/402': [402, 'public'],
      '/418-plain': [418, undefined],
      '/302-plain': [302, undefined],
    }
    const origin = await startOrigin(t, (req, res, n) => {
      const [status, cc] = statuses[req.url ?? ''] ?? [200, undefined]
      res.statusCode = status
      if (cc) res.setHeader('Cache-Control', cc)
      if (status === 303 || status === 302) res.setHeader('Location', '/elsewhere')
      res.end(`${req.url} ${n}`)
    })
    const { url } = await startRouter(t, origin.address)
    for (const [path, [status, cc]] of Object.entries(statuses)) {
      const first = await get(`${url}${path}`)
      assert.equal(first.status, status)
      const again = await get(`${url}${path}`)
      assert.equal(again.status, status)
      if (cc) assert.equal(again.body, first.body, `${path}: a hit`)
      else assert.notEqual(again.body, first.body, `${path}: not stored`)
    }
  })

  test('a stored 418 becomes stale and is revalidated like any other', async (t) => {
    const origin = await startOrigin(t, (req, res, n) => {
      if (req.headers['if-none-match'] === '"v1"') {
        res.statusCode = 304
        res.setHeader('Cache-Control', 'max-age=1')
        res.setHeader('ETag', '"v1"')
        res.end()
        return
      }
      res.statusCode = 418
      res.setHeader('Cache-Control', 'max-age=1')
      res.setHeader('ETag', '"v1"')
      res.end(`gone ${n}`)
    })
    const { url, clock } = await startRouter(t, origin.address, { params: { default_grace: '0', default_keep: '60' } })
    assert.equal((await get(`${url}/g`)).body, 'gone 1')
    clock.advance(2100)
    const r = await get(`${url}/g`)
    assert.equal(r.status, 418)
    assert.equal(r.body, 'gone 1', 'the stored body, revalidated')
    assert.equal(origin.seen.at(-1)?.headers['if-none-match'], '"v1"')
  })
})

describe('caching-router: targeted cache control (RFC 9213)', () => {
  const fields: Record<string, Record<string, string>> = {
    // The CDN stores what browsers must not.
    '/cdn-stores': { 'Cache-Control': 'no-store', 'CDN-Cache-Control': 'max-age=60' },
    // The CDN does not store what browsers may.
    '/cdn-refuses': { 'Cache-Control': 'max-age=60', 'CDN-Cache-Control': 'no-store' },
    '/cdn-private': { 'Cache-Control': 'max-age=60', 'CDN-Cache-Control': 'private' },
    // Not an RFC 8941 Dictionary (a trailing comma, a quoted key): ignored as a whole.
    '/cdn-invalid': { 'Cache-Control': 'max-age=60', 'CDN-Cache-Control': 'no-store,' },
    '/cdn-invalid-2': { 'Cache-Control': 'max-age=60', 'CDN-Cache-Control': '"no-store"' },
    // Expires is not consulted either when the targeted field decides.
    '/cdn-over-expires': { Expires: 'Thu, 01 Jan 1970 00:00:00 GMT', 'CDN-Cache-Control': 'max-age=60' },
    // A Decimal is not delta-seconds: stale (RFC 9111 §4.2.1).
    '/cdn-decimal': { 'Cache-Control': 'max-age=60', 'CDN-Cache-Control': 'max-age=1.5' },
    '/surrogate': { 'Cache-Control': 'no-store', 'Edge-Control': 'max-age=60' },
  }
  const hitAfter: Record<string, boolean> = {
    '/cdn-stores': true,
    '/cdn-refuses': false,
    '/cdn-private': false,
    '/cdn-invalid': true,
    '/cdn-invalid-2': true,
    '/cdn-over-expires': true,
    '/cdn-decimal': false,
    '/surrogate': false,
  }

  async function run(t: TestContext, params: Record<string, string>, expect: Record<string, boolean>): Promise<void> {
    const origin = await startOrigin(t, (req, res, n) => {
      for (const [k, v] of Object.entries(fields[req.url ?? ''] ?? {})) res.setHeader(k, v)
      res.end(`${req.url} ${n}`)
    })
    const { url } = await startRouter(t, origin.address, { params: { default_grace: '0', ...params } })
    for (const [path, hit] of Object.entries(expect)) {
      const first = await get(`${url}${path}`)
      const again = await get(`${url}${path}`)
      assert.equal(again.body === first.body, hit, `${path}: ${hit ? 'a hit' : 'fetched again'}`)
      // The fields go on to the client unchanged: browsers obey Cache-Control.
      if (fields[path]?.['Cache-Control']) assert.equal(again.headers['cache-control'], fields[path]['Cache-Control'])
    }
  }

  test('CDN-Cache-Control takes precedence over Cache-Control and Expires; an invalid one is ignored', async (t) => {
    await run(t, {}, hitAfter)
  })

  test('-p targeted_cache_control lists the fields, in order; empty turns targeting off', async (t) => {
    await run(t, { targeted_cache_control: 'Edge-Control, CDN-Cache-Control' }, { '/surrogate': true, '/cdn-stores': true })
    await run(t, { targeted_cache_control: '' }, { '/cdn-stores': false, '/cdn-refuses': true })
  })

  test('a bad targeted_cache_control is refused in varnishd param words', async (t) => {
    await assert.rejects(
      startRouter(t, { host: '127.0.0.1', port: 9 }, { params: { targeted_cache_control: 'CDN Cache-Control' } }),
      /Not a list of field names \(CDN Cache-Control\)\n\n\(attempting to set param 'targeted_cache_control' to 'CDN Cache-Control'\)/,
    )
  })
})
