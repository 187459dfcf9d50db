import assert from 'node:assert/strict'
import net from 'node:net'
import { describe, test } from 'node:test'
import { get, latch, sleep, startOrigin, startRouter } from './router-harness.js'

describe('caching-router: coalescing, grace, keep, LRU', () => {
  test('20 concurrent misses make one backend fetch; the waiters stream from it', async (t) => {
    const held = latch()
    const origin = await startOrigin(t, (_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60')
      res.write('first half,')
      void held.wait.then(() => res.end('second half'))
    })
    const { url, router } = await startRouter(t, origin.address)
    const replies = Array.from({ length: 20 }, () => get(`${url}/c`))
    // Every client is in: waiting on the busy object or following the fill.
    for (let i = 0; i < 1000 && router.counters.client_req < 20; i++) await sleep(10)
    assert.equal(router.counters.client_req, 20)
    held.open()
    const all = await Promise.all(replies)
    for (const r of all) assert.equal(r.body, 'first half,second half')
    assert.equal(origin.seen.length, 1)
    assert.equal(router.counters.cache_miss, 1)
    assert.equal(router.counters.cache_hit, 19)
  })

  test('20 concurrent misses while the response head is still awaited: all wait on the busy object, one fetch', async (t) => {
    // The head is held too: every later client must find the fetch busy and wait for it (the
    // test above may see the head arrive before the last clients, which then simply hit).
    const held = latch()
    const origin = await startOrigin(t, (_req, res) => {
      void held.wait.then(() => {
        res.setHeader('Cache-Control', 'max-age=60')
        res.setHeader('Vary', 'Accept-Encoding')
        res.end('the one fetch')
      })
    })
    const { url, router } = await startRouter(t, origin.address)
    const replies = Array.from({ length: 20 }, () => get(`${url}/busy`))
    for (let i = 0; i < 1000 && router.counters.busy_sleep < 19; i++) await sleep(10)
    assert.equal(router.counters.client_req, 20)
    assert.equal(router.counters.busy_sleep, 19, 'nineteen wait on the busy object')
    assert.equal(origin.seen.length, 1)
    held.open()
    const all = await Promise.all(replies)
    for (const r of all) assert.equal(r.body, 'the one fetch')
    assert.equal(origin.seen.length, 1, 'exactly one backend fetch')
    assert.equal(router.counters.cache_miss, 1)
    assert.equal(router.counters.cache_hit, 19)
    assert.equal(router.counters.busy_wakeup, 19)
    // And it is stored: the next request is a hit without a fetch.
    assert.equal((await get(`${url}/busy`)).body, 'the one fetch')
    assert.equal(origin.seen.length, 1)
  })

  test('the client that started a fill leaving does not stop it for the others', async (t) => {
    const held = latch()
    const origin = await startOrigin(t, (_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60')
      res.write('part one,')
      void held.wait.then(() => res.end('part two'))
    })
    const { url, router, address } = await startRouter(t, origin.address)
    const quitter = net.connect(address.port, address.host)
    quitter.on('error', () => {})
    quitter.write(`GET /leave HTTP/1.1\r\nHost: 127.0.0.1:${address.port}\r\n\r\n`)
    for (let i = 0; i < 1000 && origin.seen.length < 1; i++) await sleep(10)
    const others = [get(`${url}/leave`), get(`${url}/leave`)]
    for (let i = 0; i < 1000 && router.counters.client_req < 3; i++) await sleep(10)
    quitter.destroy()
    held.open()
    for (const r of await Promise.all(others)) assert.equal(r.body, 'part one,part two')
    assert.equal(origin.seen.length, 1)
    assert.equal((await get(`${url}/leave`)).body, 'part one,part two')
  })

  test('hit-for-miss objects do not serialize clients', async (t) => {
    let inFlight = 0
    let most = 0
    // Each answer waits until all five are in at once (or 15 s, when they are serialized): no
    // race between a slow machine and a fixed delay; the bound only ends a failing run.
    const together = latch()
    const origin = await startOrigin(t, (_req, res, n) => {
      res.setHeader('Set-Cookie', 'a=1')
      if (n === 1) return res.end('private')
      inFlight++
      most = Math.max(most, inFlight)
      if (inFlight === 5) together.open()
      const timer = setTimeout(together.open, 15_000)
      void together.wait.then(() => {
        clearTimeout(timer)
        inFlight--
        res.end('private')
      })
    })
    const { url } = await startRouter(t, origin.address)
    await get(`${url}/hfm`)
    await Promise.all(Array.from({ length: 5 }, () => get(`${url}/hfm`)))
    assert.equal(origin.seen.length, 6)
    assert.equal(most, 5, 'all five went to the origin at once')
  })

  test('grace: a stale object is served at once and refreshed once in the background; backend down, stale within grace', async (t) => {
    const held = latch()
    const origin = await startOrigin(t, (_req, res, n) => {
      res.setHeader('Cache-Control', 'max-age=1')
      // The refresh is held until the grace hits are answered, so none of them can see it.
      if (n === 1) res.end('v1')
      else void held.wait.then(() => res.end(`v${n}`))
    })
    const { url, router, clock } = await startRouter(t, origin.address, { params: { default_grace: '60' } })
    assert.equal((await get(`${url}/g`)).body, 'v1')
    clock.advance(2100)
    const stale = await Promise.all([get(`${url}/g`), get(`${url}/g`), get(`${url}/g`)])
    for (const r of stale) assert.equal(r.body, 'v1')
    assert.equal(origin.seen.length, 2, 'one background refresh for three grace hits')
    assert.equal(router.counters.cache_hit_grace, 3)
    held.open()
    for (let i = 0; i < 1000 && (await get(`${url}/g`)).body !== 'v2'; i++) await sleep(10)
    assert.equal((await get(`${url}/g`)).body, 'v2')
    await origin.close()
    clock.advance(2100)
    const down = await get(`${url}/g`)
    assert.equal(down.status, 200)
    assert.equal(down.body, 'v2')
  })

  test('grace over and the backend down: 503 Backend fetch failed, the guru meditation page', async (t) => {
    const origin = await startOrigin(t, (_req, res) => {
      res.setHeader('Cache-Control', 'max-age=1, must-revalidate')
      res.end('gone soon')
    })
    const { url, router, clock } = await startRouter(t, origin.address, { params: { default_grace: '60' } })
    await get(`${url}/d`)
    await origin.close()
    clock.advance(2100)
    const r = await get(`${url}/d`)
    assert.equal(r.status, 503)
    assert.match(r.body, /<h1>Error 503 Backend fetch failed<\/h1>/)
    assert.match(r.body, /Guru Meditation/)
    assert.equal(r.headers['retry-after'], '5')
    assert.ok(router.counters.fetch_failed >= 1)
  })

  test('keep: an expired object is revalidated with If-None-Match and refreshed on 304', async (t) => {
    const origin = await startOrigin(t, (req, res) => {
      res.setHeader('Cache-Control', 'max-age=1')
      res.setHeader('ETag', '"e1"')
      res.setHeader('X-Gen', String(Date.now()))
      if (req.headers['if-none-match'] === '"e1"') {
        res.statusCode = 304
        res.end()
        return
      }
      res.end('kept body')
    })
    const { url, clock } = await startRouter(t, origin.address, { params: { default_grace: '0', default_keep: '60' } })
    assert.equal((await get(`${url}/k`)).body, 'kept body')
    clock.advance(2100)
    const r = await get(`${url}/k`)
    assert.equal(r.status, 200)
    assert.equal(r.body, 'kept body')
    assert.equal(origin.seen.length, 2)
    assert.equal(origin.seen[1]?.headers['if-none-match'], '"e1"')
    // Refreshed: fresh again, a hit.
    const again = await get(`${url}/k`)
    assert.equal(again.body, 'kept body')
    assert.match(String(again.headers['x-varnish']), / /)
    assert.equal(origin.seen.length, 2)
  })

  test('no-cache with a validator is hit-for-miss, as builtin.vcl makes any no-cache response', async (t) => {
    const origin = await startOrigin(t, (req, res) => {
      res.setHeader('Cache-Control', 'no-cache')
      res.setHeader('ETag', '"n1"')
      if (req.headers['if-none-match'] === '"n1"') {
        res.statusCode = 304
        res.end()
        return
      }
      res.end('revalidate me')
    })
    const { url, router } = await startRouter(t, origin.address)
    for (let i = 0; i < 3; i++) assert.equal((await get(`${url}/nc`)).body, 'revalidate me')
    assert.equal(origin.seen.length, 3)
    // Nothing is stored to revalidate: every fetch is unconditional (varnishd 7.1's vcl_beresp_control).
    for (const seen of origin.seen) assert.equal(seen.headers['if-none-match'], undefined)
    assert.equal(router.counters.cache_hitmiss, 2)
  })

  test('a tiny store stays within its bytes under a flood of unique URLs, evicting least recently used', async (t) => {
    const origin = await startOrigin(t, (_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60')
      res.end('x'.repeat(500))
    })
    const { url, router } = await startRouter(t, origin.address, { storageBytes: 4096 })
    for (let i = 0; i < 100; i++) {
      assert.equal((await get(`${url}/u${i}`)).body.length, 500)
      assert.ok(router.store.bytes <= 4096, `store at ${router.store.bytes} bytes`)
    }
    assert.ok(router.counters.n_lru_nuked >= 90, `nuked ${router.counters.n_lru_nuked}`)
    assert.ok(router.counters.n_object <= 8)
    // The most recent object is still there; the first is gone.
    await get(`${url}/u99`)
    assert.equal(origin.seen.length, 100)
    await get(`${url}/u0`)
    assert.equal(origin.seen.length, 101)
  })

  test('an object larger than the store is delivered, not stored', async (t) => {
    const origin = await startOrigin(t, (_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60')
      res.end('y'.repeat(10_000))
    })
    const { url, router } = await startRouter(t, origin.address, { storageBytes: 4096 })
    assert.equal((await get(`${url}/big`)).body.length, 10_000)
    assert.equal((await get(`${url}/big`)).body.length, 10_000)
    assert.equal(origin.seen.length, 2)
    assert.equal(router.store.bytes, 0)
    // Concurrent clients of one oversized fill each get the whole body.
    const all = await Promise.all(Array.from({ length: 5 }, () => get(`${url}/big`)))
    for (const r of all) assert.equal(r.body, 'y'.repeat(10_000))
    assert.equal(router.store.bytes, 0)
    assert.equal(router.counters.n_object, 0)
  })
})

describe('caching-router: backpressure on responses that are not stored', () => {
  for (const [name, headers] of [
    ['pass (Cookie)', 'Cookie: a=1\r\n'],
    ['hit-for-miss fill (no-store)', ''],
  ] as const) {
    test(`${name}: a client that does not read holds the backend back; then it gets every byte`, async (t) => {
      const TOTAL = 96 * 1024 * 1024
      const chunk = Buffer.alloc(64 * 1024, 'x')
      let written = 0
      const origin = await startOrigin(t, (_req, res) => {
        res.setHeader('Cache-Control', 'no-store')
        res.setHeader('Content-Length', String(TOTAL))
        const more = () => {
          while (written < TOTAL) {
            written += chunk.length
            if (!res.write(chunk)) return void res.once('drain', more)
          }
          res.end()
        }
        more()
      })
      const { address } = await startRouter(t, origin.address)
      const client = net.connect(address.port, address.host)
      t.after(() => client.destroy())
      client.pause()
      client.write(`GET /big HTTP/1.1\r\nHost: a\r\n${headers}\r\n`)
      // Wait until the origin stops getting further (every buffer on the way is full).
      let last = -1
      for (let i = 0; i < 100 && written !== last; i++) {
        last = written
        await sleep(100)
      }
      assert.ok(written < TOTAL / 2, `the backend was held back (${written} of ${TOTAL} bytes written)`)
      let received = 0
      const done = new Promise<void>((resolve) => {
        client.on('data', (c: Buffer) => {
          received += c.length
          if (received >= TOTAL) resolve()
        })
      })
      client.resume()
      await done
      assert.ok(received > TOTAL, 'head and the whole body')
    })
  }
})
