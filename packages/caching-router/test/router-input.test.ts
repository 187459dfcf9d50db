import assert from 'node:assert/strict'
import net, { type AddressInfo } from 'node:net'
import { describe, test } from 'node:test'
import { encodeProxyV1, encodeProxyV2 } from '@edgestack/common'
import { exchange, get, sleep, startOrigin, startRouter } from './router-harness.js'

const statusOf = (raw: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1])

describe('caching-router: bad input, PROXY, pipe, backend failures', () => {
  test('smuggling shapes and oversized heads are refused over raw sockets, the connection closed', async (t) => {
    const origin = await startOrigin(t, (_req, res) => res.end('ok'))
    const { address, router } = await startRouter(t, origin.address, {
      params: { http_req_hdr_len: '200', http_req_size: '1024' },
    })
    const cases: Array<[string, string, number]> = [
      ['CL and TE', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
      ['two Content-Lengths', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', 400],
      ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n', 400],
      ['bare CR', 'GET / HTTP/1.1\rHost: a\r\n\r\n', 400],
      ['space before colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400],
      // http_req_size bounds the request line (not http_req_hdr_len, as varnishd).
      ['long request line', `GET /${'a'.repeat(1100)} HTTP/1.1\r\nHost: a\r\n\r\n`, 414],
      ['large head', `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(2000)}\r\n\r\n`, 431],
      // varnishd's http_req_hdr_len bounds every field line, not only the request line.
      ['one field line over http_req_hdr_len', `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(300)}\r\n\r\n`, 431],
    ]
    for (const [name, bytes, status] of cases) {
      const raw = await exchange(address, bytes)
      assert.equal(statusOf(raw), status, `${name}: ${raw}`)
      assert.match(raw, /Connection: close/i, name)
    }
    // Without feature=+http2 the HTTP/2 preface is closed unanswered, as varnishd 7.1 does.
    assert.equal(await exchange(address, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), '')
    assert.equal(origin.seen.length, 0, 'nothing reached the origin')
    // One client's bad request does not disturb another.
    assert.equal((await get(`http://127.0.0.1:${address.port}/fine`)).body, 'ok')
    assert.ok(router.counters.client_req_400 >= cases.length)
  })

  test("a client's invalid chunked body is the client's fault: 400, logged as a client error, access line 400", async (t) => {
    const origin = await startOrigin(t, (req, res) => {
      req.resume()
      req.on('end', () => res.end('ok'))
      req.on('error', () => {})
    })
    const { address, router, lines, logs } = await startRouter(t, origin.address)
    const raw = await exchange(address, 'POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n')
    assert.equal(statusOf(raw), 400, raw)
    for (let i = 0; i < 500 && lines.length === 0; i++) await sleep(10)
    await sleep(50)
    assert.equal(lines.length, 1, lines.join('\n'))
    assert.match(lines[0] as string, /"POST http:\/\/a\/upload HTTP\/1\.1" 400 /)
    assert.ok(!logs.some((l) => l.includes('backend fetch failed')), logs.join('\n'))
    assert.ok(
      logs.some((l) => l.includes('client') && l.includes('invalid chunk size')),
      logs.join('\n'),
    )
    assert.equal(router.counters.fetch_failed, 0)
    assert.equal(router.counters.s_synth, 0)
    // The router keeps serving.
    assert.equal((await get(`http://127.0.0.1:${address.port}/after`)).body, 'ok')
  })

  test('a GET with a small body answered from cache: the body is read and dropped, the connection kept (as varnishd)', async (t) => {
    const origin = await startOrigin(t, (_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60')
      res.end('cached')
    })
    const { address, url } = await startRouter(t, origin.address)
    assert.equal((await get(`${url}/c`, { headers: { host: 'a' } })).body, 'cached')
    // The body is never read as a request: the second request on the connection is the next one.
    const raw = await exchange(address, 'GET /c HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    assert.equal([...raw.matchAll(/HTTP\/1\.1 200 /g)].length, 2, raw)
    assert.doesNotMatch(raw.split('cached')[0] as string, /\r\nConnection: close\r\n/)
    assert.equal(origin.seen.length, 1)
  })

  test('HTTP/1.1 without Host: 400 from builtin.vcl', async (t) => {
    const origin = await startOrigin(t, (_req, res) => res.end('ok'))
    const { address } = await startRouter(t, origin.address)
    const raw = await exchange(address, 'GET / HTTP/1.1\r\n\r\n', { end: true })
    assert.equal(statusOf(raw), 400)
  })

  test('a backend response field with CR, LF or NUL never reaches the client', async (t) => {
    const bad = net.createServer((s) => {
      s.on('error', () => {})
      s.once('data', () => {
        s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Evil: a\0b\r\nX-Good: yes\r\n\r\nok')
      })
    })
    await new Promise<void>((resolve) => bad.listen(0, '127.0.0.1', resolve))
    t.after(() => bad.close())
    const { url } = await startRouter(t, { host: '127.0.0.1', port: (bad.address() as AddressInfo).port })
    const r = await get(`${url}/evil`)
    assert.equal(r.headers['x-evil'], undefined)
    assert.ok(r.status === 200 || r.status === 503, `status ${r.status}`)
  })

  test('a backend dying mid-body: the client is cut short, nothing is stored, the next request refetches', async (t) => {
    let n = 0
    const dying = net.createServer((s) => {
      s.on('error', () => {})
      s.once('data', () => {
        n++
        const cc = n % 2 === 1 ? 'max-age=60' : 'no-store'
        s.write(`HTTP/1.1 200 OK\r\nCache-Control: ${cc}\r\nContent-Length: 100\r\n\r\nonly part`)
        setTimeout(() => s.destroy(), 20)
      })
    })
    await new Promise<void>((resolve) => dying.listen(0, '127.0.0.1', resolve))
    t.after(() => {
      dying.close()
    })
    const { url, router } = await startRouter(t, { host: '127.0.0.1', port: (dying.address() as AddressInfo).port })
    for (const path of ['/cut', '/cut-pass']) {
      await assert.rejects(get(`${url}${path}`))
    }
    assert.equal(router.store.objectCount, 1, 'only the hit-for-miss marker of the no-store answer')
    await assert.rejects(get(`${url}/cut`))
    assert.equal(n, 3)
    assert.ok(router.counters.fetch_failed >= 3)
  })

  test('backend refused: 503 Backend fetch failed, promptly, and the router keeps serving', async (t) => {
    const closed = net.createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const { url, router } = await startRouter(t, { host: '127.0.0.1', port })
    for (const path of ['/a', '/a', '/b']) {
      const r = await get(`${url}${path}`)
      assert.equal(r.status, 503)
      assert.match(r.body, /Backend fetch failed/)
      assert.match(r.body, /XID: \d+/)
    }
    assert.equal(router.counters.backend_fail, 3)
  })

  test('a backend that never answers: 503 after first_byte_timeout', async (t) => {
    const silent = net.createServer((s) => s.on('error', () => {}))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    t.after(() => {
      silent.close()
    })
    const { url } = await startRouter(t, { host: '127.0.0.1', port: (silent.address() as AddressInfo).port }, {
      params: { first_byte_timeout: '0.3' },
    })
    const r = await get(`${url}/slow`)
    assert.equal(r.status, 503)
  })

  for (const [version, encode] of [
    ['v1', encodeProxyV1],
    ['v2', encodeProxyV2],
  ] as const) {
    test(`PROXY ${version}: the client address comes from the header`, async (t) => {
      const origin = await startOrigin(t, (req, res) => res.end(String(req.headers['x-forwarded-for'])))
      const { address } = await startRouter(t, origin.address, { proxy: true })
      const head = encode({ address: '203.0.113.7', port: 5555 }, { address: '127.0.0.1', port: address.port })
      const raw = await exchange(
        address,
        Buffer.concat([head, Buffer.from('GET /p HTTP/1.1\r\nHost: a\r\nCookie: x=1\r\nConnection: close\r\n\r\n')]),
      )
      assert.equal(statusOf(raw), 200)
      assert.match(raw, /\r\n\r\n203\.0\.113\.7$/)
    })
  }

  test('a malformed PROXY header closes the connection', async (t) => {
    const origin = await startOrigin(t, (_req, res) => res.end('ok'))
    const { address } = await startRouter(t, origin.address, { proxy: true })
    const raw = await exchange(address, 'PROXY TCP4 nonsense\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n')
    assert.equal(raw, '')
    assert.equal(origin.seen.length, 0)
  })

  test('article routing: websocket upgrades and /socket.io/ are piped to the app as raw bytes', async (t) => {
    const app = net.createServer((s) => {
      s.on('error', () => {})
      let head = ''
      s.on('data', (c: Buffer) => {
        head += c.toString('latin1')
        if (head.includes('\r\n\r\n') && !head.includes('ECHO')) {
          s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
        }
        // vcl_pipe sets `bereq.http.upgrade`: the field is named as the VCL spells it, as in varnishd.
        if (head.includes('ECHO')) s.end(`echo:${/^upgrade: websocket\r$/im.test(head) ? 'upgraded' : 'plain'}`)
      })
    })
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve))
    t.after(() => {
      app.close()
    })
    const appAddr = { host: '127.0.0.1', port: (app.address() as AddressInfo).port }
    const statics = await startOrigin(t, (_req, res) => res.end('static'))
    const { address, router, lines } = await startRouter(t, appAddr, { article: statics.address })
    let echoed = false
    const raw = await exchange(
      address,
      'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      {
        react(out, s) {
          if (echoed || !out.includes('101 Switching')) return
          echoed = true
          s.write('ECHO')
        },
      },
    )
    assert.match(raw, /^HTTP\/1\.1 101 Switching Protocols/)
    assert.match(raw, /echo:upgraded$/)
    assert.equal(router.counters.s_pipe, 1)
    assert.equal((await get(`http://127.0.0.1:${address.port}/app.css`)).body, 'static')
    for (let i = 0; i < 500 && !lines.some((l) => l.endsWith(' pipe')); i++) await new Promise((r) => setTimeout(r, 10))
    assert.ok(lines.some((l) => l.endsWith(' pipe')))
  })
})
