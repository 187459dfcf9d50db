import assert from 'node:assert/strict'
import net from 'node:net'
import { after, before, describe, test } from 'node:test'
import { createHttp1Server, type Http1Server, type HostPort } from '../src/index.js'

/** Sends raw bytes, collects everything until the server closes (bounded by 5 s). */
function exchange(addr: HostPort, bytes: string | Buffer, opts: { end?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(addr.port, addr.host)
    let out = ''
    s.setEncoding('latin1')
    s.on('data', (c: string) => {
      out += c
    })
    s.on('close', () => resolve(out))
    s.on('error', reject)
    s.setTimeout(5000, () => {
      s.destroy()
      resolve(out)
    })
    s.write(bytes)
    if (opts.end ?? true) s.end()
  })
}

const statuses = (raw: string) => [...raw.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))

describe('http1 server core', () => {
  let server: Http1Server
  let addr: HostPort
  before(async () => {
    server = createHttp1Server({
      limits: { maxRequestLineBytes: 100, maxHeadBytes: 400 },
      onRequest(req, res) {
        if (req.target === '/pipe') {
          const { socket, rest } = res.hijack()
          socket.write(`PIPED ${rest.toString()}`)
          socket.end()
          return
        }
        if (req.target === '/stream') {
          res.writeHead(200, ['Content-Type', 'text/plain'])
          res.write('a')
          res.write('bc')
          res.end()
          return
        }
        if (req.target === '/early') {
          res.send(413, [], 'too big\n')
          return
        }
        if (req.hasBody) {
          const chunks: Buffer[] = []
          req.body.on('data', (c: Buffer) => chunks.push(c))
          req.body.on('end', () => res.send(200, ['X-Len', String(Buffer.concat(chunks).length)], Buffer.concat(chunks)))
          return
        }
        res.send(200, ['X-Target', req.target, 'X-Remote', req.remoteAddress], `${req.method} ${req.target}\n`)
      },
    })
    addr = await server.listen({ host: '127.0.0.1', port: 0 })
  })
  after(() => server.close({ drainTimeoutMs: 100 }))

  test('keep-alive: pipelined requests are answered in order on one connection', async () => {
    const raw = await exchange(addr, 'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    assert.deepEqual(statuses(raw), [200, 200, 200])
    assert.deepEqual([...raw.matchAll(/X-Target: (\S+)/g)].map((m) => m[1]), ['/a', '/b', '/c'])
    assert.match(raw, /Connection: close\r\n/)
  })

  test('a bare LF ends a line as CRLF does (RFC 9112 §2.2, as nginx and varnishd read it)', async () => {
    const raw = await exchange(
      addr,
      '\nGET /a HTTP/1.1\nHost: x\n\nPOST /b HTTP/1.1\r\nHost: x\nContent-Length: 2\n\r\nhiGET /c HTTP/1.1\nHost: x\r\nConnection: close\n\n',
    )
    assert.deepEqual(statuses(raw), [200, 200, 200], raw)
    assert.deepEqual([...raw.matchAll(/X-Target: (\S+)/g)].map((m) => m[1]), ['/a', '/c'])
    assert.match(raw, /X-Len: 2\r\n/)
  })

  test('Content-Length and chunked bodies are read; what follows them is the next request', async () => {
    const raw = await exchange(
      addr,
      'POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloPOST /y HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\nGET /z HTTP/1.1\r\nHost: x\r\n\r\n',
    )
    assert.deepEqual(statuses(raw), [200, 200, 200])
    assert.match(raw, /X-Len: 5\r\n[\s\S]*\r\n\r\nhello/)
    assert.match(raw, /X-Len: 5\r\n[\s\S]*\r\n\r\nabcde/)
    assert.match(raw, /GET \/z/)
  })

  test('HTTP/1.0 closes unless keep-alive is asked for; HEAD gets no body', async () => {
    const raw = await exchange(addr, 'HEAD /h HTTP/1.0\r\n\r\n', { end: false })
    assert.deepEqual(statuses(raw), [200])
    assert.match(raw, /Content-Length: 8\r\n/)
    assert.ok(raw.endsWith('\r\n\r\n'), 'no body after the head')
  })

  test('a streamed body is chunked for HTTP/1.1', async () => {
    const raw = await exchange(addr, 'GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    assert.match(raw, /Transfer-Encoding: chunked\r\n/)
    assert.ok(raw.endsWith('\r\n\r\n1\r\na\r\n2\r\nbc\r\n0\r\n\r\n'), raw)
  })

  test('an answer before a large body is read closes the connection after it', async () => {
    const raw = await exchange(addr, 'POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nxx', { end: false })
    assert.deepEqual(statuses(raw), [413])
    assert.match(raw, /Connection: close/)
  })

  test('an answer before a chunked body is read closes the connection after it', async () => {
    const raw = await exchange(addr, 'POST /early HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxx\r\n', { end: false })
    assert.deepEqual(statuses(raw), [413])
    assert.match(raw, /Connection: close/)
  })

  test('an answer before a small body is read: the body is dropped, never parsed, and the connection goes on', async () => {
    // The body looks like a request: it must be skipped as bytes, not answered.
    const body = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'
    const raw = await exchange(
      addr,
      `POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    )
    assert.deepEqual(statuses(raw), [413, 200], raw)
    assert.doesNotMatch(raw.split('HTTP/1.1 200')[0] as string, /Connection: close/)
    assert.deepEqual([...raw.matchAll(/X-Target: (\S+)/g)].map((m) => m[1]), ['/next'])
  })

  test('a small body still arriving after the answer is dropped as it comes', async () => {
    const s = net.connect(addr.port, addr.host)
    let out = ''
    s.setEncoding('latin1')
    s.on('data', (c: string) => {
      out += c
      // The answer came before the body was sent; now send it and the next request.
      if (statuses(out).length === 1 && !s.writableEnded) s.end(`${'z'.repeat(1000)}GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
    })
    s.write('POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n')
    await new Promise<void>((resolve) => {
      s.on('close', () => resolve())
      s.setTimeout(5000, () => s.destroy())
    })
    assert.deepEqual(statuses(out), [413, 200], out)
    assert.match(out, /X-Target: \/after\r\n/)
  })

  test('hijack hands over the socket with the bytes after the head', async () => {
    const raw = await exchange(addr, 'GET /pipe HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nframe-bytes', { end: false })
    assert.equal(raw, 'PIPED frame-bytes')
  })

  const refused: [string, string, number][] = [
    ['Content-Length with Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['differing Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', 400],
    ['Content-Length list that disagrees', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\nabcd', 400],
    ['signed Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc', 400],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n', 400],
    ['bare CR ending a line', 'GET / HTTP/1.1\rHost: x\r\n\r\n', 400],
    ['bare CR in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n', 400],
    ['space before the colon', 'GET / HTTP/1.1\r\nHost: x\r\nX-A : 1\r\n\r\n', 400],
    ['NUL in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n', 400],
    ['missing Host on HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['two Host fields', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    ['chunked not last', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 400],
    ['Transfer-Encoding on HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['invalid chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
    ['two spaces in the request line', 'GET  / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['HTTP/2.0 request line', 'GET / HTTP/2.0\r\nHost: x\r\n\r\n', 505],
    ['gzip transfer coding', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501],
    ['request line over the limit', `GET /${'a'.repeat(200)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414],
    ['head over the limit', `GET / HTTP/1.1\r\nHost: x\r\nX-A: ${'a'.repeat(500)}\r\n\r\n`, 431],
  ]
  for (const [name, bytes, status] of refused) {
    test(`refuses ${name} with ${status} and closes`, async () => {
      const raw = await exchange(addr, bytes, { end: false })
      assert.deepEqual(statuses(raw), [status], raw)
      assert.match(raw, /Connection: close/)
    })
  }

  test('a refused request never reaches the handler, and the next client is served', async () => {
    const raw = await exchange(addr, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n', { end: false })
    assert.doesNotMatch(raw, /smuggled/)
    const ok = await exchange(addr, 'GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    assert.deepEqual(statuses(ok), [200])
  })

  test('a response header with CR or LF is never written', async (t) => {
    const bad = createHttp1Server({
      onRequest(_req, res) {
        try {
          res.send(200, ['X-Evil', 'a\r\nSet-Cookie: x=1'], 'body')
        } catch {
          res.send(502, [], 'bad gateway\n')
        }
      },
    })
    const a = await bad.listen({ host: '127.0.0.1', port: 0 })
    t.after(() => bad.close({ drainTimeoutMs: 100 }))
    const raw = await exchange(a, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    assert.deepEqual(statuses(raw), [502])
    assert.doesNotMatch(raw, /Set-Cookie/)
  })

  test('PROXY protocol: the client address comes from the header; a bad header closes silently', async (t) => {
    const proxied = createHttp1Server({
      proxyProtocol: true,
      onRequest(req, res) {
        res.send(200, [], `${req.remoteAddress}:${req.remotePort}`)
      },
    })
    const a = await proxied.listen({ host: '127.0.0.1', port: 0 })
    t.after(() => proxied.close({ drainTimeoutMs: 100 }))
    const raw = await exchange(a, 'PROXY TCP4 192.0.2.9 127.0.0.1 4242 80\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    assert.ok(raw.endsWith('192.0.2.9:4242'), raw)
    assert.equal(await exchange(a, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', { end: false }), '')
  })

  test('close() drains: the in-flight response completes, then the server stops', async () => {
    let release: (() => void) | undefined
    const slow = createHttp1Server({
      onRequest(_req, res) {
        release = () => res.send(200, [], 'late but complete')
      },
    })
    const a = await slow.listen({ host: '127.0.0.1', port: 0 })
    const reply = exchange(a, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', { end: false })
    while (!release) await new Promise((r) => setTimeout(r, 10))
    const closed = slow.close({ drainTimeoutMs: 5000 })
    release()
    const raw = await reply
    await closed
    assert.match(raw, /Connection: close\r\n[\s\S]*late but complete$/)
    assert.equal(slow.connectionCount, 0)
  })
})
