import assert from 'node:assert/strict'
import net, { type AddressInfo } from 'node:net'
import { describe, test } from 'node:test'
import { exchange, get, sleep, startOrigin, startRouter } from './router-harness.js'

describe('caching-router: stale-if-error, Expect, pipe_timeout, unsafe methods', () => {
  test('RFC 5861 stale-if-error: a stale copy stands in for a failed fetch, even with no grace', async (t) => {
    const origin = await startOrigin(t, (_req, res) => {
      res.setHeader('Cache-Control', 'max-age=1, stale-if-error=60')
      res.end('still here')
    })
    const { url, clock } = await startRouter(t, origin.address, { params: { default_grace: '0' } })
    assert.equal((await get(`${url}/sie`)).body, 'still here')
    await origin.close()
    clock.advance(2100)
    const r = await get(`${url}/sie`)
    assert.equal(r.status, 200)
    assert.equal(r.body, 'still here')
  })

  test('must-revalidate: never served stale when the backend fails', async (t) => {
    const origin = await startOrigin(t, (_req, res) => {
      res.setHeader('Cache-Control', 'max-age=1, must-revalidate, stale-if-error=60')
      res.end('strict')
    })
    const { url, clock } = await startRouter(t, origin.address, { params: { default_grace: '60', default_keep: '60' } })
    assert.equal((await get(`${url}/mr`)).body, 'strict')
    await origin.close()
    clock.advance(2100)
    assert.equal((await get(`${url}/mr`)).status, 503)
  })

  test('PUT and DELETE invalidate the URL; a failed one does not', async (t) => {
    const origin = await startOrigin(t, (req, res, n) => {
      req.resume()
      if (req.method === 'PUT') res.statusCode = 204
      if (req.method === 'DELETE') res.statusCode = req.url === '/keepme' ? 500 : 200
      res.setHeader('Cache-Control', 'max-age=60')
      res.end(req.method === 'GET' ? `${req.url} ${n}` : '')
    })
    const { url } = await startRouter(t, origin.address)
    assert.equal((await get(`${url}/put`)).body, '/put 1')
    await get(`${url}/put`, { method: 'PUT', body: 'x' })
    assert.equal((await get(`${url}/put`)).body, '/put 3')
    await get(`${url}/put`, { method: 'DELETE' })
    assert.equal((await get(`${url}/put`)).body, '/put 5')
    assert.equal((await get(`${url}/keepme`)).body, '/keepme 6')
    await get(`${url}/keepme`, { method: 'DELETE' })
    assert.equal((await get(`${url}/keepme`)).body, '/keepme 6')
  })

  test('Expect: 100-continue is answered by the router and not forwarded', async (t) => {
    const origin = await startOrigin(t, (req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => {
        body += c
      })
      req.on('end', () => res.end(`${req.headers.expect ?? 'no expect'} ${body}`))
    })
    const { address } = await startRouter(t, origin.address)
    let sent = false
    const raw = await exchange(address, 'POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n', {
      react(out, s) {
        if (sent || !out.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) return
        sent = true
        s.write('hello')
      },
    })
    assert.match(raw, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/)
    assert.match(raw, /no expect hello$/)
  })

  test('pipe_timeout closes an idle pipe, both halves', async (t) => {
    let upstreamClosed = false
    const app = net.createServer((s) => {
      s.on('error', () => {})
      s.on('close', () => {
        upstreamClosed = true
      })
      s.once('data', () => s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'))
    })
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve))
    t.after(() => {
      app.close()
    })
    const statics = await startOrigin(t, (_req, res) => res.end('static'))
    const { address } = await startRouter(t, { host: '127.0.0.1', port: (app.address() as AddressInfo).port }, {
      article: statics.address,
      params: { pipe_timeout: '0.5' },
    })
    const raw = await exchange(address, 'GET /socket.io/ HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    assert.match(raw, /^HTTP\/1\.1 101 /)
    for (let i = 0; i < 500 && !upstreamClosed; i++) await sleep(20)
    assert.ok(upstreamClosed, 'the backend half was closed too')
  })
})
