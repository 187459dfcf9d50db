import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { get, startOrigin, startRouter } from './router-harness.js'

describe('caching-router cache (builtin.vcl)', () => {
  test('a miss then a hit: one origin request, X-Varnish with both xids, Age, Via', async (t) => {
    const origin = await startOrigin(t, (_req, res, n) => {
      res.setHeader('Cache-Control', 'max-age=60')
      res.end(`body ${n}`)
    })
    const { url, router, lines } = await startRouter(t, origin.address)
    const a = await get(`${url}/x`)
    const b = await get(`${url}/x`)
    assert.equal(a.body, 'body 1')
    assert.equal(b.body, 'body 1')
    assert.equal(origin.seen.length, 1)
    assert.match(String(a.headers['x-varnish']), /^\d+$/)
    assert.match(String(b.headers['x-varnish']), /^\d+ \d+$/)
    assert.equal(b.headers.age, '0')
    assert.equal(b.headers.via, '1.1 test (caching-router)')
    assert.equal(b.headers['accept-ranges'], 'bytes')
    assert.equal(router.counters.cache_miss, 1)
    assert.equal(router.counters.cache_hit, 1)
    assert.match(lines[0] as string, /"GET http:\/\/127\.0\.0\.1:\d+\/x HTTP\/1\.1" 200 6 "-" "-" miss$/)
    assert.match(lines[1] as string, / hit$/)
  })

  test('RFC 9110 §6.6.1: a response without Date gets one when received, kept with the stored object (as varnishd)', async (t) => {
    const origin = await startOrigin(t, (req, res) => {
      res.sendDate = false
      res.setHeader('Cache-Control', req.url === '/pass' ? 'no-store' : 'max-age=60')
      res.end('x')
    })
    const { url } = await startRouter(t, origin.address)
    const before = Math.floor(Date.now() / 1000) * 1000
    const miss = await get(`${url}/x`)
    const hit = await get(`${url}/x`)
    const pass = await get(`${url}/pass`)
    const after = Date.now()
    for (const r of [miss, hit, pass]) {
      const d = Date.parse(String(r.headers.date))
      assert.ok(d >= before && d <= after, `Date ${r.headers.date} not from this exchange`)
    }
    assert.equal(hit.headers.date, miss.headers.date, 'a hit carries the stored Date')
  })

  test('hash is URL + Host: another host is another object', async (t) => {
    const origin = await startOrigin(t, (req, res) => {
      res.setHeader('Cache-Control', 'max-age=60')
      res.end(String(req.headers.host))
    })
    const { url } = await startRouter(t, origin.address)
    assert.equal((await get(`${url}/h`, { headers: { Host: 'a.example' } })).body, 'a.example')
    assert.equal((await get(`${url}/h`, { headers: { Host: 'b.example' } })).body, 'b.example')
    assert.equal((await get(`${url}/h`, { headers: { Host: 'A.example' } })).body, 'a.example')
    assert.equal(origin.seen.length, 2)
  })

  test('Cookie, Authorization and POST pass; POST forwards its body', async (t) => {
    const origin = await startOrigin(t, (req, res, n) => {
      let body = ''
      req.on('data', (c: Buffer) => {
        body += c
      })
      req.on('end', () => {
        res.setHeader('Cache-Control', 'max-age=60')
        res.end(`${n}:${req.method}:${body}`)
      })
    })
    const { url, router } = await startRouter(t, origin.address)
    await get(`${url}/p`, { headers: { Cookie: 'a=1' } })
    await get(`${url}/p`, { headers: { Authorization: 'Basic eDp5' } })
    const post = await get(`${url}/p`, { method: 'POST', body: 'hello' })
    assert.equal(post.body, '3:POST:hello')
    assert.equal(origin.seen.length, 3)
    assert.equal(router.counters.s_pass, 3)
  })

  test('uncacheable responses become hit-for-miss and are fetched every time', async (t) => {
    const cases: Record<string, Record<string, string>> = {
      '/cookie': { 'Set-Cookie': 'a=1', 'Cache-Control': 'max-age=60' },
      '/nostore': { 'Cache-Control': 'no-store' },
      '/private': { 'Cache-Control': 'private, max-age=60' },
      '/zero': { 'Cache-Control': 'max-age=0' },
      '/varystar': { 'Cache-Control': 'max-age=60', Vary: '*' },
      '/surrogate': { 'Surrogate-Control': 'no-store', 'Cache-Control': 'max-age=60' },
      '/expired': { Expires: '0' },
    }
    const origin = await startOrigin(t, (req, res) => {
      for (const [k, v] of Object.entries(cases[req.url as string] ?? {})) res.setHeader(k, v)
      res.end('x')
    })
    const { url, router } = await startRouter(t, origin.address)
    for (const path of Object.keys(cases)) {
      await get(`${url}${path}`)
      await get(`${url}${path}`)
    }
    assert.equal(origin.seen.length, 2 * Object.keys(cases).length)
    assert.equal(router.counters.cache_hitmiss, Object.keys(cases).length)
    assert.equal(router.counters.cache_hit, 0)
  })

  test('Vary: one variant per Accept-Language value', async (t) => {
    const origin = await startOrigin(t, (req, res) => {
      res.setHeader('Cache-Control', 'max-age=60')
      res.setHeader('Vary', 'Accept-Language')
      res.end(`lang=${req.headers['accept-language'] ?? ''}`)
    })
    const { url } = await startRouter(t, origin.address)
    for (const lang of ['en', 'fr', 'en', 'fr', 'de']) {
      const r = await get(`${url}/v`, { headers: { 'Accept-Language': lang } })
      assert.equal(r.body, `lang=${lang}`)
    }
    assert.equal(origin.seen.length, 3)
  })

  test('Vary: invented values cannot pile up variants under one URL', async (t) => {
    const origin = await startOrigin(t, (req, res) => {
      res.setHeader('Cache-Control', 'max-age=60')
      res.setHeader('Vary', 'X-Junk')
      res.end(`junk=${req.headers['x-junk']}`)
    })
    const { url, router } = await startRouter(t, origin.address)
    for (let i = 0; i < 100; i++) assert.equal((await get(`${url}/j`, { headers: { 'X-Junk': String(i) } })).body, `junk=${i}`)
    assert.equal(router.counters.n_object, 32)
    assert.equal((await get(`${url}/j`, { headers: { 'X-Junk': '99' } })).body, 'junk=99')
    assert.equal(origin.seen.length, 100)
  })

  test('RFC 9111 §4.4: a successful POST invalidates the URL and its same-origin Location', async (t) => {
    const origin = await startOrigin(t, (req, res, n) => {
      if (req.method === 'POST') {
        req.resume()
        res.setHeader('Location', '/other')
        res.statusCode = 201
        res.end()
        return
      }
      res.setHeader('Cache-Control', 'max-age=60')
      res.end(`${req.url} ${n}`)
    })
    const { url } = await startRouter(t, origin.address)
    assert.equal((await get(`${url}/inv`)).body, '/inv 1')
    assert.equal((await get(`${url}/other`)).body, '/other 2')
    assert.equal((await get(`${url}/inv`)).body, '/inv 1')
    assert.equal((await get(`${url}/inv`, { method: 'POST', body: 'x' })).status, 201)
    assert.equal((await get(`${url}/inv`)).body, '/inv 4')
    assert.equal((await get(`${url}/other`)).body, '/other 5')
  })

  test('206 and Content-Range from the origin are passed on, not stored; Range is served from stored objects', async (t) => {
    const origin = await startOrigin(t, (req, res) => {
      if (req.url === '/partial') {
        res.statusCode = 206
        res.setHeader('Content-Range', 'bytes 0-1/10')
        res.setHeader('Cache-Control', 'max-age=60')
        res.end('01')
        return
      }
      res.setHeader('Cache-Control', 'max-age=60')
      res.end('0123456789')
    })
    const { url } = await startRouter(t, origin.address)
    assert.equal((await get(`${url}/partial`)).status, 206)
    assert.equal((await get(`${url}/partial`)).status, 206)
    assert.equal(origin.seen.length, 2)
    assert.equal((await get(`${url}/full`)).body, '0123456789')
    const r = await get(`${url}/full`, { headers: { Range: 'bytes=2-4' } })
    assert.equal(r.status, 206)
    assert.equal(r.body, '234')
    assert.equal(r.headers['content-range'], 'bytes 2-4/10')
    const suffix = await get(`${url}/full`, { headers: { Range: 'bytes=-3' } })
    assert.equal(suffix.body, '789')
    const bad = await get(`${url}/full`, { headers: { Range: 'bytes=20-' } })
    assert.equal(bad.status, 416)
    assert.equal(bad.headers['content-range'], 'bytes */10')
    // The fill asked the origin for the whole object, never for the client's range.
    assert.equal(origin.seen[2]?.headers.range, undefined)
  })

  test('If-None-Match on a hit: 304 from the stored object', async (t) => {
    const origin = await startOrigin(t, (_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60')
      res.setHeader('ETag', '"v1"')
      res.end('tagged')
    })
    const { url } = await startRouter(t, origin.address)
    await get(`${url}/e`)
    const r = await get(`${url}/e`, { headers: { 'If-None-Match': '"v1"' } })
    assert.equal(r.status, 304)
    assert.equal(r.body, '')
    assert.equal((await get(`${url}/e`, { headers: { 'If-None-Match': '"v2"' } })).status, 200)
  })

  test('Age from the origin is subtracted from max-age; an invalid Age is ignored', async (t) => {
    const origin = await startOrigin(t, (req, res) => {
      res.setHeader('Cache-Control', 'max-age=100')
      res.setHeader('Age', req.url === '/old' ? '100' : 'banana')
      res.end('a')
    })
    const { url } = await startRouter(t, origin.address)
    await get(`${url}/old`)
    await get(`${url}/old`)
    await get(`${url}/bad`)
    const hit = await get(`${url}/bad`)
    assert.equal(origin.seen.length, 3, 'the object already 100 s old is not fresh')
    assert.equal(hit.headers.age, '0')
  })

  test('HEAD is answered from a GET fill, without a body', async (t) => {
    const origin = await startOrigin(t, (req, res) => {
      res.setHeader('Cache-Control', 'max-age=60')
      res.end(`method=${req.method}`)
    })
    const { url } = await startRouter(t, origin.address)
    const head = await get(`${url}/hd`, { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(head.body, '')
    assert.equal((await get(`${url}/hd`)).body, 'method=GET')
    assert.equal(origin.seen.length, 1)
    assert.equal(origin.seen[0]?.method, 'GET')
  })

  test('X-Forwarded-For is appended and hop-by-hop fields are not forwarded', async (t) => {
    const origin = await startOrigin(t, (req, res) => {
      res.setHeader('Keep-Alive', 'timeout=5')
      res.setHeader('X-Hop', 'secret')
      res.setHeader('Connection', 'X-Hop')
      res.end(JSON.stringify(req.headers))
    })
    const { url } = await startRouter(t, origin.address)
    const r = await get(`${url}/hop`, {
      headers: { 'X-Forwarded-For': '10.0.0.9', Connection: 'X-Drop, Host', 'X-Drop': '1', 'Proxy-Connection': 'x', Cookie: 'c=1' },
    })
    const seen = JSON.parse(r.body) as Record<string, string>
    assert.equal(seen['x-forwarded-for'], '10.0.0.9, 127.0.0.1')
    assert.equal(seen['x-drop'], undefined)
    assert.equal(seen['proxy-connection'], undefined)
    assert.ok(seen.host, 'Connection: Host never removes Host')
    assert.equal(r.headers['x-hop'], undefined)
    assert.equal(r.headers['keep-alive'], undefined)
  })

  test('default_ttl applies without freshness information; 302 needs explicit freshness', async (t) => {
    const origin = await startOrigin(t, (req, res, n) => {
      if (req.url === '/redirect') {
        res.statusCode = 302
        res.setHeader('Location', '/x')
      }
      res.end(String(n))
    })
    const { url } = await startRouter(t, origin.address, { params: { default_ttl: '60' } })
    await get(`${url}/plain`)
    await get(`${url}/plain`)
    await get(`${url}/redirect`)
    await get(`${url}/redirect`)
    assert.equal(origin.seen.length, 3)
  })
})
