import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { get, type Reply, sleep, startOrigin, startRouter, type TestClock, testClock } from './router-harness.js'
import { startVclRouter } from './router-vcl-harness.js'

// varnishd compiles `-b HOST:PORT` into `vcl 4.1; backend default { ... }` plus builtin.vcl, so
// `-b` and `-f` with a VCL that declares only that backend are one program. The same backend
// answers go through both routers here; every caching outcome a client can observe must agree.

const HOUR_AHEAD = new Date(Date.now() + 3_600_000).toUTCString()
const HOUR_AGO = new Date(Date.now() - 3_600_000).toUTCString()

interface Case {
  status?: number
  headers: Record<string, string>
}

const CASES: Record<string, Case> = {
  '/max-age': { headers: { 'Cache-Control': 'max-age=60' } },
  '/max-age-1': { headers: { 'Cache-Control': 'max-age=1' } },
  '/max-age-0-etag': { headers: { 'Cache-Control': 'max-age=0', ETag: '"z"' } },
  '/s-maxage': { headers: { 'Cache-Control': 's-maxage=60, max-age=0' } },
  '/s-maxage-1': { headers: { 'Cache-Control': 's-maxage=1, max-age=600' } },
  '/no-cache': { headers: { 'Cache-Control': 'no-cache' } },
  '/no-cache-etag': { headers: { 'Cache-Control': 'no-cache', ETag: '"v1"' } },
  '/no-cache-last-modified': { headers: { 'Cache-Control': 'no-cache, max-age=60', 'Last-Modified': HOUR_AGO } },
  '/no-store': { headers: { 'Cache-Control': 'no-store' } },
  '/private': { headers: { 'Cache-Control': 'private, max-age=60' } },
  '/set-cookie': { headers: { 'Cache-Control': 'max-age=60', 'Set-Cookie': 'a=1' } },
  '/vary-star': { headers: { 'Cache-Control': 'max-age=60', Vary: '*' } },
  '/vary-list-star': { headers: { 'Cache-Control': 'max-age=60', Vary: 'Accept, *' } },
  '/vary-language': { headers: { 'Cache-Control': 'max-age=60', Vary: 'Accept-Language' } },
  '/expires-ahead': { headers: { Expires: HOUR_AHEAD } },
  '/expires-ago': { headers: { Expires: HOUR_AGO } },
  '/expires-zero': { headers: { Expires: '0' } },
  '/expires-and-max-age': { headers: { Expires: HOUR_AGO, 'Cache-Control': 'max-age=60' } },
  '/heuristic': { headers: {} },
  '/etag-max-age-1': { headers: { 'Cache-Control': 'max-age=1', ETag: '"k"' } },
  '/must-revalidate': { headers: { 'Cache-Control': 'max-age=1, must-revalidate' } },
  '/stale-while-revalidate': { headers: { 'Cache-Control': 'max-age=1, stale-while-revalidate=60' } },
  '/age': { headers: { 'Cache-Control': 'max-age=60', Age: '59' } },
  '/surrogate-no-store': { headers: { 'Cache-Control': 'max-age=60', 'Surrogate-Control': 'no-store' } },
  '/surrogate-hides-private': { headers: { 'Cache-Control': 'private, max-age=60', 'Surrogate-Control': 'max-age=60' } },
  '/301': { status: 301, headers: { Location: '/max-age' } },
  '/302': { status: 302, headers: { Location: '/max-age' } },
  '/302-max-age': { status: 302, headers: { Location: '/max-age', 'Cache-Control': 'max-age=60' } },
  '/307': { status: 307, headers: { Location: '/max-age' } },
  '/404': { status: 404, headers: {} },
  '/410-max-age': { status: 410, headers: { 'Cache-Control': 'max-age=60' } },
  '/500': { status: 500, headers: {} },
  '/503-max-age': { status: 503, headers: { 'Cache-Control': 'max-age=60' } },
}

/** What a client can tell about one answer: status, hit or not, and the fields that matter. */
function observed(r: Reply): Record<string, unknown> {
  const pick = (name: string) => r.headers[name]
  return {
    status: r.status,
    body: r.body,
    // Two numbers: a hit on a stored object (varnishd's X-Varnish for a hit).
    hit: String(pick('x-varnish')).includes(' '),
    // Age is left out: the test clock runs with real time, so a loaded machine can turn a
    // second between two requests on one router and not on the other. The origin's own Age
    // (the /age case) shows in the TTL outcomes instead.
    fields: ['cache-control', 'etag', 'last-modified', 'set-cookie', 'vary', 'expires', 'location', 'surrogate-control', 'accept-ranges'].map(
      (n) => [n, pick(n)],
    ),
  }
}

interface Router {
  url: string
  clock: TestClock
  /** Per path: the requests the origin saw, with the validators each carried. */
  seen: Map<string, string[]>
}

async function origin(t: Parameters<typeof startOrigin>[0]): Promise<{ address: HostPort; seen: Map<string, string[]> }> {
  const seen = new Map<string, string[]>()
  const o = await startOrigin(t, (req, res) => {
    const path = req.url as string
    const c = CASES[path]
    const conditional = [req.headers['if-none-match'], req.headers['if-modified-since']].filter((v) => v !== undefined).join(' ')
    seen.set(path, [...(seen.get(path) ?? []), conditional])
    if (c === undefined) {
      res.statusCode = 404
      res.end()
      return
    }
    for (const [k, v] of Object.entries(c.headers)) res.setHeader(k, v)
    const etag = c.headers.ETag
    if (etag !== undefined && req.headers['if-none-match'] === etag) {
      res.statusCode = 304
      res.end()
      return
    }
    res.statusCode = c.status ?? 200
    res.end(`${path} ${seen.get(path)?.length}`)
  })
  return { address: o.address, seen }
}

/** The first two GETs of a path, one after the other; a third comes after the clock moved. */
async function outcome(r: Router, path: string): Promise<Record<string, unknown>> {
  const headers = { 'Accept-Language': 'en' }
  const first = observed(await get(`${r.url}${path}`, { headers }))
  const second = observed(await get(`${r.url}${path}`, { headers }))
  return { first, second, fetches: r.seen.get(path) }
}

test('-b and -f with a VCL of one backend cache every response shape alike (one builtin.vcl)', async (t) => {
  const b = await origin(t)
  const f = await origin(t)
  // No default grace: an expired object is fetched again at once, not refreshed in the background.
  const params = { default_grace: '0' }
  // Frozen clocks: on a loaded machine a max-age=1 object would expire between the first two
  // requests on one router and not on the other.
  const viaB = await startRouter(t, b.address, { params, clock: testClock({ frozen: true }) })
  const viaF = await startVclRouter(`vcl 4.1;\nbackend default { .host = "${f.address.host}"; .port = "${f.address.port}"; }\n`, 'boot.vcl', params, {
    clock: testClock({ frozen: true }),
  })
  t.after(() => viaF.stop())
  const routers: Router[] = [
    { url: viaB.url, clock: viaB.clock, seen: b.seen },
    { url: viaF.url, clock: viaF.clock, seen: f.seen },
  ]
  const paths = Object.keys(CASES)
  const before: Record<string, unknown>[][] = []
  for (const r of routers) before.push(await Promise.all(paths.map((p) => outcome(r, p))))
  for (const r of routers) r.clock.advance(2100)
  const after: Record<string, unknown>[][] = []
  for (const r of routers) {
    const thirds: Record<string, unknown>[] = []
    for (const p of paths) thirds.push(observed(await get(`${r.url}${p}`, { headers: { 'Accept-Language': 'en' } })))
    // stale-while-revalidate's grace hit refreshes in the background: counted once it arrived.
    for (let i = 0; i < 200 && (r.seen.get('/stale-while-revalidate')?.length ?? 0) < 2; i++) await sleep(10)
    after.push(thirds.map((third, i) => ({ third, fetches: r.seen.get(paths[i] as string) })))
  }
  for (const [i, path] of paths.entries()) {
    assert.deepEqual(before[1]?.[i], before[0]?.[i], `${path}: -f (left) against -b (right), first two requests`)
    assert.deepEqual(after[1]?.[i], after[0]?.[i], `${path}: -f (left) against -b (right), after 2.1 s`)
  }
  // The matrix reaches every outcome, so the comparison is not between two routers that never store.
  const at = (path: string) => {
    const i = paths.indexOf(path)
    return { ...before[0]?.[i], ...after[0]?.[i] } as { second: { hit: boolean }; third: { hit: boolean }; fetches: string[] }
  }
  assert.equal(at('/max-age').second.hit, true)
  assert.equal(at('/max-age').third.hit, true)
  assert.equal(at('/max-age-1').third.hit, false)
  assert.equal(at('/stale-while-revalidate').third.hit, true)
  assert.equal(at('/heuristic').third.hit, true)
  // builtin.vcl: no-cache is hit-for-miss whatever the validators, so nothing is revalidated.
  assert.deepEqual(at('/no-cache-etag').fetches, ['', '', ''])
  assert.equal(at('/no-cache-last-modified').second.hit, false)
  // A stored object past its ttl, kept with a validator (default_keep is 0: nothing kept), is fetched anew.
  assert.equal(at('/etag-max-age-1').fetches.length, 2)
  // RFC 9111 §3: explicit freshness makes any status storable (varnishd: its fixed list only).
  assert.equal(at('/503-max-age').second.hit, true)
  for (const path of ['/set-cookie', '/vary-star', '/private', '/no-store', '/500', '/302', '/expires-zero']) {
    assert.equal(at(path).second.hit, false, path)
  }
  // RFC 9111 §4.1: `*` among other names is never matched, though builtin.vcl stores it.
  assert.equal(at('/vary-list-star').second.hit, false)
  assert.equal(at('/surrogate-hides-private').second.hit, true)
  assert.equal(at('/302-max-age').second.hit, true)
})
