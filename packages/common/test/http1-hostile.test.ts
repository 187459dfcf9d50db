import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import { after, before, describe, test } from 'node:test'
import { createHttp1Server, encodeProxyV2, type HostPort, type Http1Server, type Http1ServerOptions } from '../src/index.js'

/**
 * Hostile and malformed input against the shared HTTP/1.1 core, over real loopback sockets.
 * Every wait is bounded; a bound that runs out is reported as "not closed", never as a speed.
 */

interface Reply {
  raw: string
  /** The server closed the connection before our bound ran out. */
  closed: boolean
}

interface ExchangeOptions {
  /** Half-close after the last part (default true). */
  end?: boolean
  /** Pause between parts so each one leaves in its own segment. */
  gapMs?: number
  /** How long we wait for the server to close (default 5 s). */
  waitMs?: number
}

/** Sends `parts` one after another on one connection and collects what comes back. */
function exchange(addr: HostPort, parts: string | Buffer | (string | Buffer)[], opts: ExchangeOptions = {}): Promise<Reply> {
  const list = Array.isArray(parts) ? parts : [parts]
  return new Promise((resolve) => {
    const s = net.connect(addr.port, addr.host)
    s.setNoDelay(true)
    let raw = ''
    let done = false
    const finish = (closed: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      s.destroy()
      resolve({ raw, closed })
    }
    const timer = setTimeout(() => finish(false), opts.waitMs ?? 5000)
    s.setEncoding('latin1')
    s.on('data', (c: string) => {
      raw += c
    })
    s.on('close', () => finish(true))
    s.on('error', () => finish(true))
    s.on('connect', async () => {
      for (const [i, p] of list.entries()) {
        if (s.destroyed) return
        s.write(p)
        if (opts.gapMs && i < list.length - 1) await new Promise((r) => setTimeout(r, opts.gapMs))
      }
      if ((opts.end ?? true) && !s.destroyed) s.end()
    })
  })
}

const statuses = (raw: string) => [...raw.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))

/** Waits (bounded) until the server holds no connection, and asserts it. */
async function assertNoConnections(server: Http1Server): Promise<void> {
  for (let i = 0; i < 100 && server.connectionCount > 0; i++) await new Promise((r) => setTimeout(r, 50))
  assert.equal(server.connectionCount, 0, 'connections left open')
}

interface Fixture {
  server: Http1Server
  addr: HostPort
  /** `METHOD target` of every request the handler saw. */
  seen: string[]
  /** The most response bytes ever waiting in one socket's buffer after an answer. */
  maxBuffered: number
}

/** A server whose handler answers 200 with the body length, or streams a large body for /big. */
async function fixture(extra: Partial<Http1ServerOptions> = {}): Promise<Fixture> {
  const seen: string[] = []
  const f = { seen, maxBuffered: 0 } as Fixture
  const fat = Buffer.alloc(4096, 0x66)
  const server = createHttp1Server({
    limits: { maxRequestLineBytes: 100, maxHeadBytes: 400, maxHeaderCount: 8 },
    headerTimeoutMs: 2000,
    ...extra,
    onRequest(req, res) {
      seen.push(`${req.method} ${req.target}`)
      if (req.target === '/fat') {
        res.send(200, [], fat)
        f.maxBuffered = Math.max(f.maxBuffered, req.socket.writableLength)
        return
      }
      if (req.target === '/big') {
        res.writeHead(200, ['Content-Type', 'text/plain'])
        const chunk = Buffer.alloc(65536, 0x61)
        let left = 256
        const pump = () => {
          while (left > 0) {
            left--
            if (!res.write(chunk)) return void req.socket.once('drain', pump)
          }
          res.end()
        }
        res.on('close', () => {
          left = 0
        })
        pump()
        return
      }
      let length = 0
      const body = req.body
      body.on('data', (c: Buffer) => {
        length += c.length
      })
      body.on('error', () => undefined)
      body.on('end', () => res.send(200, ['X-Len', String(length), 'X-Target', req.target], ''))
    },
  })
  f.server = server
  f.addr = await server.listen({ host: '127.0.0.1', port: 0 })
  return f
}

/** One fixture for a describe block; after it, no connection may be left open. */
function sharedFixture(extra: Partial<Http1ServerOptions> = {}): Fixture {
  const f = {} as Fixture
  before(async () => {
    Object.assign(f, await fixture(extra))
  })
  after(async () => {
    await assertNoConnections(f.server)
    await f.server.close({ drainTimeoutMs: 100 })
  })
  return f
}

const GET = (target = '/', extra = '') => `GET ${target} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`

describe('http1 core: request smuggling shapes are refused and the connection closed', () => {
  const f = sharedFixture()

  const post = (fields: string, body: string) => `POST /p HTTP/1.1\r\nHost: x\r\n${fields}\r\n${body}`
  const refused: [string, string, number][] = [
    ['CL.TE', post('Content-Length: 6\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\nG'), 400],
    ['TE.CL', post('Transfer-Encoding: chunked\r\nContent-Length: 3\r\n', '8\r\nSMUGGLED\r\n0\r\n\r\n'), 400],
    ['TE: xchunked', post('Transfer-Encoding: xchunked\r\n', '0\r\n\r\n'), 400],
    ['TE with space before the colon', post('Transfer-Encoding : chunked\r\n', '0\r\n\r\n'), 400],
    ['TE: chunked, identity', post('Transfer-Encoding: chunked, identity\r\n', '0\r\n\r\n'), 400],
    ['TE: chunked then TE: x', post('Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n', '0\r\n\r\n'), 400],
    ['duplicate TE: chunked', post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'), 501],
    ['TE: chunked with garbage after it', post('Transfer-Encoding: chunked;x\r\n', '0\r\n\r\n'), 400],
    ['TE: "chunked"', post('Transfer-Encoding: "chunked"\r\n', '0\r\n\r\n'), 400],
    ['TE with a vertical tab', post('Transfer-Encoding:\x0bchunked\r\n', '0\r\n\r\n'), 400],
    ['TE folded onto the next line', post('Transfer-Encoding:\r\n chunked\r\n', '0\r\n\r\n'), 400],
    ['TE name with a NUL', post('Transfer-Encoding\0: chunked\r\n', '0\r\n\r\n'), 400],
    ['chunk size that overflows', post('Transfer-Encoding: chunked\r\n', 'ffffffffffffffffff\r\nx\r\n0\r\n\r\n'), 400],
    ['chunk size beyond 2^53 (15 hex digits)', post('Transfer-Encoding: chunked\r\n', 'fffffffffffffff\r\nx\r\n0\r\n\r\n'), 400],
    ['chunk size with a sign', post('Transfer-Encoding: chunked\r\n', '+5\r\nhello\r\n0\r\n\r\n'), 400],
    ['chunk size with a 0x prefix', post('Transfer-Encoding: chunked\r\n', '0x5\r\nhello\r\n0\r\n\r\n'), 400],
    ['chunk size followed by garbage', post('Transfer-Encoding: chunked\r\n', '5 x\r\nhello\r\n0\r\n\r\n'), 400],
    ['chunk data longer than its size', post('Transfer-Encoding: chunked\r\n', '3\r\nhello\r\n0\r\n\r\n'), 400],
    ['a chunk extension over 4 KiB, whole in one segment', post('Transfer-Encoding: chunked\r\n', `1;${'a'.repeat(5000)}\r\nx\r\n0\r\n\r\n`), 400],
    ['chunk extensions adding up past 16 KiB', post('Transfer-Encoding: chunked\r\n', `${`1;${'e'.repeat(3000)}\r\nx\r\n`.repeat(6)}0\r\n\r\n`), 400],
    ['chunk ended by a bare LF', post('Transfer-Encoding: chunked\r\n', '5\nhello\r\n0\r\n\r\n'), 400],
    ['negative Content-Length', post('Content-Length: -1\r\n', ''), 400],
    ['hex Content-Length', post('Content-Length: 0x5\r\n', 'hello'), 400],
    ['Content-Length with a plus', post('Content-Length: +5\r\n', 'hello'), 400],
    ['Content-Length with a decimal point', post('Content-Length: 5.0\r\n', 'hello'), 400],
    ['Content-Length with an exponent', post('Content-Length: 5e0\r\n', 'hello'), 400],
    ['empty Content-Length', post('Content-Length:\r\n', ''), 400],
    ['Content-Length with inner space', post('Content-Length: 1 0\r\n', 'hello'), 400],
    ['Content-Length beyond 2^53', post('Content-Length: 99999999999999999999\r\n', 'x'), 400],
    ['Content-Length list with an empty member', post('Content-Length: 5,\r\n', 'hello'), 400],
    ['two differing Content-Length fields', post('Content-Length: 5\r\nContent-Length: 6\r\n', 'hello!'), 400],
    // Allowed by RFC 9110 §8.6, refused by nginx and varnishd alike.
    ['two equal Content-Length fields', post('Content-Length: 5\r\nContent-Length: 5\r\n', 'hello'), 400],
    ['Content-Length list of equal members', post('Content-Length: 5, 5\r\n', 'hello'), 400],
    ['Content-Length with a space before the colon', post('Content-Length : 5\r\n', 'hello'), 400],
  ]
  for (const [name, bytes, status] of refused) {
    test(`${name}: ${status}, and the pipelined request behind it is never read`, async () => {
      const before = f.seen.length
      const r = await exchange(f.addr, `${bytes}${GET('/smuggled')}`, { end: false })
      assert.equal(r.closed, true, 'the server closes')
      assert.deepEqual(statuses(r.raw), [status], r.raw)
      assert.match(r.raw, /Connection: close\r\n/)
      assert.ok(!f.seen.slice(before).includes('GET /smuggled'), 'smuggled request reached the handler')
    })
  }

  const accepted: [string, string, number][] = [
    ['TE after a tab', post('Transfer-Encoding:\tchunked\r\n', '5\r\nhello\r\n0\r\n\r\n'), 5],
    ['TE with trailing whitespace', post('Transfer-Encoding: chunked \t\r\n', '5\r\nhello\r\n0\r\n\r\n'), 5],
    ['TE in capitals', post('Transfer-Encoding: CHUNKED\r\n', '5\r\nhello\r\n0\r\n\r\n'), 5],
    ['Content-Length with leading zeros', post('Content-Length: 005\r\n', 'hello'), 5],
    ['a chunk extension and a trailer', post('Transfer-Encoding: chunked\r\n', '5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n'), 5],
    ['chunk size with leading zeros', post('Transfer-Encoding: chunked\r\n', '0005\r\nhello\r\n0\r\n\r\n'), 5],
  ]
  for (const [name, bytes, length] of accepted) {
    test(`accepted as RFC 9112 allows: ${name}; the next request follows`, async () => {
      const r = await exchange(f.addr, `${bytes}${GET('/next', 'Connection: close\r\n')}`)
      assert.deepEqual(statuses(r.raw), [200, 200], r.raw)
      assert.match(r.raw, new RegExp(`X-Len: ${length}\\r\\n`))
      assert.match(r.raw, /X-Target: \/next\r\n/)
    })
  }

  test('a chunked request split at every byte boundary reads the same', async () => {
    const bytes = `${post('Transfer-Encoding: chunked\r\n', '3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: v\r\n\r\n')}${GET('/after', 'Connection: close\r\n')}`
    for (let i = 1; i < bytes.length; i++) {
      const r = await exchange(f.addr, [bytes.slice(0, i), bytes.slice(i)], { gapMs: 2 })
      assert.deepEqual(statuses(r.raw), [200, 200], `split at ${i}: ${r.raw}`)
      assert.match(r.raw, /X-Len: 5\r\n[\s\S]*X-Target: \/after\r\n/, `split at ${i}`)
    }
  })

  test('a refused request split at every byte boundary is still refused, nothing after it answered', async () => {
    const bytes = `${post('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n')}${GET('/smuggled')}`
    const before = f.seen.length
    for (let i = 1; i < bytes.length; i += 3) {
      const r = await exchange(f.addr, [bytes.slice(0, i), bytes.slice(i)], { gapMs: 2, end: false })
      assert.deepEqual(statuses(r.raw), [400], `split at ${i}: ${r.raw}`)
    }
    assert.equal(f.seen.length, before)
  })

  test('a whole request sent one byte per segment is served', async () => {
    const bytes = `POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc`
    const r = await exchange(f.addr, [...bytes], { gapMs: 1 })
    assert.deepEqual(statuses(r.raw), [200])
    assert.match(r.raw, /X-Len: 3\r\n/)
  })
})

describe('http1 core: limits at their exact boundaries', () => {
  const f = sharedFixture()

  // maxRequestLineBytes 100: "GET " + target + " HTTP/1.1" is 13 bytes plus the target.
  const line = (n: number) => `GET /${'a'.repeat(n - 14)} HTTP/1.1`
  for (const [n, status] of [
    [99, 200],
    [100, 200],
    [101, 414],
  ] as const) {
    test(`a request line of ${n} bytes (limit 100): ${status}`, async () => {
      assert.equal(line(n).length, n)
      const r = await exchange(f.addr, `${line(n)}\r\nHost: x\r\nConnection: close\r\n\r\n`, { end: false })
      assert.deepEqual(statuses(r.raw), [status], r.raw)
      assert.equal(r.closed, true)
    })
  }

  // maxHeadBytes 400, counting the final CRLFCRLF.
  const head = (n: number) => {
    const start = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: '
    return `${start}${'p'.repeat(n - start.length - 4)}\r\n\r\n`
  }
  for (const [n, status] of [
    [399, 200],
    [400, 200],
    [401, 431],
  ] as const) {
    test(`a request head of ${n} bytes (limit 400): ${status}`, async () => {
      assert.equal(head(n).length, n)
      const r = await exchange(f.addr, head(n), { end: false })
      assert.deepEqual(statuses(r.raw), [status], r.raw)
    })
  }

  // maxHeaderCount 8: Host and Connection plus N-2 tiny fields.
  for (const [n, status] of [
    [7, 200],
    [8, 200],
    [9, 431],
  ] as const) {
    test(`${n} header fields (limit 8): ${status}`, async () => {
      const fields = Array.from({ length: n - 2 }, (_, i) => `a${i}: b\r\n`).join('')
      const r = await exchange(f.addr, `GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${fields}\r\n`, { end: false })
      assert.deepEqual(statuses(r.raw), [status], r.raw)
    })
  }

  test('thousands of tiny header fields: 431 without reading them all', async () => {
    const fields = 'a:\r\n'.repeat(20_000)
    const r = await exchange(f.addr, `GET / HTTP/1.1\r\nHost: x\r\n${fields}\r\n`, { end: false })
    assert.deepEqual(statuses(r.raw), [431], r.raw)
  })

  test('a flood of empty lines before a request is skipped and the request served', async () => {
    const r = await exchange(f.addr, `${'\r\n'.repeat(50_000)}${GET('/after-blank', 'Connection: close\r\n')}`)
    assert.deepEqual(statuses(r.raw), [200])
    assert.match(r.raw, /X-Target: \/after-blank/)
  })

  test('an endless flood of empty lines is closed at the header timeout', async () => {
    const s = net.connect(f.addr.port, f.addr.host)
    s.on('error', () => undefined)
    let closed = false
    s.on('close', () => {
      closed = true
    })
    for (let i = 0; i < 200 && !closed; i++) {
      s.write('\r\n'.repeat(100))
      await new Promise((r) => setTimeout(r, 50))
    }
    s.destroy()
    assert.equal(closed, true, 'closed before we stopped sending')
  })

  test('a field value of spaces with one byte after it does not stall the server for other clients', async (t) => {
    // A lazy `(.*?)[ \t]*$` backtracks quadratically on such a value: 32 KiB took seconds.
    const big = createHttp1Server({
      onRequest: (_req, res) => res.send(200, [], 'ok'),
    })
    const a = await big.listen({ host: '127.0.0.1', port: 0 })
    t.after(() => big.close({ drainTimeoutMs: 100 }))
    const value = `a${' '.repeat(32_000)}b`
    const request = `GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX: ${value}\r\n\r\n`
    // 40 of them were over 20 s of one CPU before the fix; they are sent before the good client.
    const sockets = await Promise.all(
      Array.from(
        { length: 40 },
        () =>
          new Promise<net.Socket>((resolve) => {
            const s = net.connect(a.port, a.host, () => s.write(request, () => resolve(s)))
            s.on('error', () => undefined)
          }),
      ),
    )
    t.after(() => {
      for (const s of sockets) s.destroy()
    })
    const good = await exchange(a, GET('/', 'Connection: close\r\n'), { waitMs: 10_000 })
    assert.equal(good.closed, true, 'the good client was answered within 10 s')
    assert.deepEqual(statuses(good.raw), [200])
  })
})

describe('http1 core: bytes that do not belong', () => {
  const f = sharedFixture()

  const cases: [string, string][] = []
  for (const [name, b] of [
    ['NUL', '\0'],
    ['CR', '\r'],
    ['LF', '\n'],
    ['DEL', '\x7f'],
    ['ESC', '\x1b'],
    ['obs-text', '\xff'],
  ]) {
    cases.push([`${name} in the method`, `G${b}ET / HTTP/1.1\r\nHost: x\r\n\r\n`])
    cases.push([`${name} in a field name`, `GET / HTTP/1.1\r\nHost: x\r\nX${b}A: 1\r\n\r\n`])
    if (b !== '\xff') {
      cases.push([`${name} in the target`, `GET /a${b}b HTTP/1.1\r\nHost: x\r\n\r\n`])
      cases.push([`${name} in a field value`, `GET / HTTP/1.1\r\nHost: x\r\nX-A: 1${b}2\r\n\r\n`])
    }
  }
  for (const host of ['a/b', 'a\\b', 'a..b', '..', 'a b', 'a\tb']) {
    cases.push([`Host ${JSON.stringify(host)} (nginx refuses it too)`, `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`])
  }
  cases.push(['HTTP/0.9', 'GET /\r\n\r\n'])
  cases.push(['a trailing space after the version', 'GET / HTTP/1.1 \r\nHost: x\r\n\r\n'])
  cases.push(['a lower-case version', 'GET / http/1.1\r\nHost: x\r\n\r\n'])
  cases.push(['a tab between the parts', 'GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n'])
  cases.push(['leading whitespace before the method', ' GET / HTTP/1.1\r\nHost: x\r\n\r\n'])
  cases.push(['a first field starting with whitespace', 'GET / HTTP/1.1\r\n Host: x\r\n\r\n'])
  cases.push(['a field without a colon', 'GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n'])
  cases.push(['an empty field name', 'GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n'])
  cases.push(['TLS bytes on the plain port', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n'])
  for (const [name, bytes] of cases) {
    test(`${JSON.stringify(name)}: 400, closed, never handled`, async () => {
      const before = f.seen.length
      const r = await exchange(f.addr, bytes, { end: false })
      assert.deepEqual(statuses(r.raw), [400], JSON.stringify(r.raw))
      assert.equal(r.closed, true)
      assert.equal(f.seen.length, before)
    })
  }

  for (const host of ['example.com', 'example.com:8080', '[::1]:80', '127.0.0.1', 'a.b.c.', '']) {
    test(`Host ${JSON.stringify(host)} is accepted`, async () => {
      const r = await exchange(f.addr, `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
      assert.deepEqual(statuses(r.raw), [200], r.raw)
    })
  }

  test('obs-text in a field value is passed on (RFC 9110 §5.5 allows it)', async () => {
    const r = await exchange(f.addr, GET('/', 'X-A: caf\xe9\r\nConnection: close\r\n'))
    assert.deepEqual(statuses(r.raw), [200])
  })

  for (const [name, target] of [
    ['absolute-form', 'http://example.com/x?y=1'],
    ['asterisk-form', '*'],
    ['authority-form', 'example.com:443'],
  ] as const) {
    test(`${name} reaches the handler verbatim, for it to judge`, async () => {
      const method = target === '*' ? 'OPTIONS' : target.includes('/') ? 'GET' : 'CONNECT'
      const r = await exchange(f.addr, `${method} ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
      assert.deepEqual(statuses(r.raw), [200], r.raw)
      assert.ok(f.seen.includes(`${method} ${target}`))
    })
  }

  for (const [version, status] of [
    ['HTTP/1.2', 505],
    ['HTTP/2.0', 505],
    ['HTTP/3.0', 505],
    ['HTTP/0.9', 400],
    ['HTTP/1.10', 505],
    ['HTTP/11', 400],
  ] as const) {
    test(`${version}: ${status}`, async () => {
      const r = await exchange(f.addr, `GET / ${version}\r\nHost: x\r\n\r\n`, { end: false })
      assert.deepEqual(statuses(r.raw), [status], r.raw)
    })
  }
})

describe('http1 core: slow, silent, half-closed and reset clients', () => {
  const f = sharedFixture({ headerTimeoutMs: 1000, bodyTimeoutMs: 1000 })

  /** Writes `bytes` one at a time every 200 ms until the server closes or we run out (bounded). */
  async function trickle(bytes: string): Promise<{ closed: boolean; raw: string }> {
    const s = net.connect(f.addr.port, f.addr.host)
    s.on('error', () => undefined)
    let closed = false
    let raw = ''
    s.setEncoding('latin1')
    s.on('data', (c: string) => {
      raw += c
    })
    s.on('close', () => {
      closed = true
    })
    for (const b of bytes) {
      if (closed) break
      s.write(b)
      await new Promise((r) => setTimeout(r, 200))
    }
    for (let i = 0; i < 50 && !closed; i++) await new Promise((r) => setTimeout(r, 100))
    s.destroy()
    return { closed, raw }
  }

  test('slowloris: a head sent one byte at a time slower than the header timeout is closed', async () => {
    const r = await trickle(`GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ${'s'.repeat(40)}\r\n\r\n`)
    assert.equal(r.closed, true, 'the server closed the connection')
    assert.equal(r.raw, '', 'no answer to a request never finished')
  })

  test('slowloris on the PROXY header is closed too', async (t) => {
    const p = await fixture({ headerTimeoutMs: 1000, proxyProtocol: true })
    t.after(() => p.server.close({ drainTimeoutMs: 100 }))
    const s = net.connect(p.addr.port, p.addr.host)
    s.on('error', () => undefined)
    let closed = false
    s.on('close', () => {
      closed = true
    })
    for (const b of 'PROXY TCP4 192.0.2.1 192.0.2.2 1000 80\r\n') {
      if (closed) break
      s.write(b)
      await new Promise((r) => setTimeout(r, 200))
    }
    s.destroy()
    assert.equal(closed, true)
  })

  test('a body that never arrives is closed at the body timeout, without an answer (as nginx)', async () => {
    const r = await exchange(f.addr, 'POST /wait HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc', { end: false, waitMs: 8000 })
    assert.equal(r.closed, true, 'the server closed the connection')
    assert.equal(r.raw, '')
  })

  test('a chunked body that stops mid-chunk is closed at the body timeout', async () => {
    const r = await exchange(f.addr, 'POST /wait HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc', {
      end: false,
      waitMs: 8000,
    })
    assert.equal(r.closed, true, 'the server closed the connection')
  })

  const stages: [string, string][] = [
    ['after part of the request line', 'GET /pa'],
    ['after the request line', 'GET / HTTP/1.1\r\n'],
    ['in the middle of a field', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1'],
    ['after the fields, before the empty line', 'GET / HTTP/1.1\r\nHost: x\r\n'],
    ['after a lone CR of the final CRLF', 'GET / HTTP/1.1\r\nHost: x\r\n\r'],
    ['in the middle of a Content-Length body', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc'],
    ['in the middle of a chunk', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab'],
    ['in a chunk-size line', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5'],
    ['before the last chunk', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n'],
    ['in the trailer section', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n'],
    ['after a complete request and part of the next', `${GET('/one')}GET /tw`],
  ]
  for (const [stage, bytes] of stages) {
    test(`a client that half-closes ${stage} is closed at once, not at a timeout`, async () => {
      // headerTimeoutMs is 60 s here: only the FIN can explain a close within our 5 s bound.
      const slow = await fixture({ headerTimeoutMs: 60_000, bodyTimeoutMs: 60_000 })
      try {
        const r = await exchange(slow.addr, bytes, { end: true, waitMs: 5000 })
        assert.equal(r.closed, true, 'the server closed after our FIN')
        assert.ok(statuses(r.raw).every((s) => s === 200), r.raw)
        await assertNoConnections(slow.server)
      } finally {
        await slow.server.close({ drainTimeoutMs: 100 })
      }
    })
  }

  test('a client that resets mid-response: the connection is cleaned up, the next client served', async () => {
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => {
        const s = net.connect(f.addr.port, f.addr.host, () => s.write(GET('/big')))
        let got = 0
        s.on('data', (c: Buffer) => {
          got += c.length
          if (got > 100_000 && !s.destroyed) s.resetAndDestroy()
        })
        s.on('error', () => undefined)
        s.on('close', () => resolve())
      })
    }
    await assertNoConnections(f.server)
    const r = await exchange(f.addr, GET('/', 'Connection: close\r\n'))
    assert.deepEqual(statuses(r.raw), [200])
  })

  test('a client that stops reading a large response and then resets is cleaned up', async () => {
    await new Promise<void>((resolve) => {
      const s = net.connect(f.addr.port, f.addr.host, () => s.write(GET('/big')))
      s.once('data', () => {
        s.pause()
        setTimeout(() => s.resetAndDestroy(), 300)
      })
      s.on('error', () => undefined)
      s.on('close', () => resolve())
    })
    await assertNoConnections(f.server)
  })

  for (const [stage, bytes] of [
    ['mid-head', 'GET / HTTP/1.1\r\nHo'],
    ['mid-body', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc'],
    ['mid-request-line', 'GET'],
  ] as const) {
    test(`a client that resets ${stage} leaves nothing behind`, async () => {
      await new Promise<void>((resolve) => {
        const s = net.connect(f.addr.port, f.addr.host, () => {
          s.write(bytes, () => setTimeout(() => s.resetAndDestroy(), 50))
        })
        s.on('error', () => undefined)
        s.on('close', () => resolve())
      })
      await assertNoConnections(f.server)
    })
  }
})

describe('http1 core: clients that do not read their answers', () => {
  test('a pipelined flood from a client that never reads: the server stops reading instead of buffering answers', async (t) => {
    const f = await fixture({ keepAliveTimeoutMs: 60_000 })
    t.after(() => f.server.close({ drainTimeoutMs: 100 }))
    const s = net.connect(f.addr.port, f.addr.host)
    s.on('error', () => undefined)
    await once(s, 'connect')
    s.pause()
    const COUNT = 5000
    s.write(GET('/fat').repeat(COUNT))
    // Wait (bounded) until the handler count stops moving or everything was answered.
    let last = -1
    for (let i = 0; i < 100 && f.seen.length !== last && f.seen.length < COUNT; i++) {
      last = f.seen.length
      await new Promise((r) => setTimeout(r, 200))
    }
    s.destroy()
    // 5,000 answers of 4 KiB are 20 MiB; the socket's own buffering is about 64 KiB.
    assert.ok(f.maxBuffered < 1024 * 1024, `${f.maxBuffered} bytes of answers buffered for one client`)
    assert.ok(f.seen.length < COUNT, 'the server kept reading requests nobody reads the answers to')
    await assertNoConnections(f.server)
  })

  test('a client that pipelines, half-closes and reads late still gets every answer, in order', async (t) => {
    const f = await fixture()
    t.after(() => f.server.close({ drainTimeoutMs: 100 }))
    const COUNT = 2000
    const got = await new Promise<string>((resolve) => {
      const s = net.connect(f.addr.port, f.addr.host, () => {
        s.pause()
        s.end(Array.from({ length: COUNT }, (_, i) => GET(`/fat?${i}`)).join(''))
        setTimeout(() => s.resume(), 500)
      })
      let raw = ''
      s.setEncoding('latin1')
      s.on('data', (c: string) => {
        raw += c
      })
      s.on('error', () => undefined)
      s.on('close', () => resolve(raw))
      setTimeout(() => s.destroy(), 30_000)
    })
    assert.equal(statuses(got).length, COUNT)
    assert.equal(f.seen.at(-1), `GET /fat?${COUNT - 1}`)
    await assertNoConnections(f.server)
  })

  for (const close of [false, true]) {
    test(`a slow reader of a large send() answer gets all of it past the ${close ? 'linger' : 'keep-alive'} time`, async (t) => {
      // Long enough to outlast the linger time (5 s) at the rate read below.
      const size = (close ? 24 : 8) * 1024 * 1024
      const big = createHttp1Server({
        keepAliveTimeoutMs: 500,
        sendTimeoutMs: 10_000,
        onRequest: (_req, res) => res.send(200, [], Buffer.alloc(size, 0x62)),
      })
      const a = await big.listen({ host: '127.0.0.1', port: 0 })
      t.after(() => big.close({ drainTimeoutMs: 100 }))
      const got = await new Promise<number>((resolve) => {
        const s = net.connect(a.port, a.host, () => s.write(GET('/', close ? 'Connection: close\r\n' : '')))
        let n = 0
        // A read every 20 ms: seconds for the whole body, with progress all along (the
        // keep-alive time is 0.5 s, the linger time of a closing connection 5 s).
        const timer = setInterval(() => {
          const c = s.read() as Buffer | null
          if (c) n += c.length
          if (n >= size) s.destroy()
        }, 20)
        s.on('error', () => undefined)
        s.on('close', () => {
          clearInterval(timer)
          resolve(n)
        })
        setTimeout(() => s.destroy(), 60_000)
      })
      assert.ok(got >= size, `got ${got} of ${size} body bytes`)
    })
  }

  test('a client that stops reading a streamed response is closed at the send timeout', async (t) => {
    const f = await fixture({ sendTimeoutMs: 1000 })
    t.after(() => f.server.close({ drainTimeoutMs: 100 }))
    const s = net.connect(f.addr.port, f.addr.host)
    s.on('error', () => undefined)
    await once(s, 'connect')
    s.pause()
    s.write(GET('/big'))
    assert.ok(await waitFor(() => f.seen.length === 1))
    // Bounded (10 s): with no send timeout the connection stays forever.
    assert.ok(await waitFor(() => f.server.connectionCount === 0, 200), 'the server closed the stalled connection')
    s.destroy()
  })

  test('a slow reader that keeps reading is not cut by the send timeout', async (t) => {
    const f = await fixture({ sendTimeoutMs: 1000 })
    t.after(() => f.server.close({ drainTimeoutMs: 100 }))
    const r = await new Promise<number>((resolve) => {
      const s = net.connect(f.addr.port, f.addr.host, () => {
        s.write(GET('/big', 'Connection: close\r\n'))
        s.pause()
      })
      let got = 0
      const timer = setInterval(() => {
        // Read a little every 100 ms: always progress, well inside the 1 s send timeout.
        s.resume()
        setTimeout(() => s.pause(), 5)
      }, 100)
      s.on('data', (c: Buffer) => {
        got += c.length
      })
      s.on('error', () => undefined)
      s.on('close', () => {
        clearInterval(timer)
        resolve(got)
      })
      setTimeout(() => s.destroy(), 30_000)
    })
    assert.ok(r > 256 * 65536, `got all ${r} bytes`)
  })
})

describe('http1 core: framing a handler (a proxy relaying a hostile backend) gets wrong', () => {
  let server: Http1Server
  let addr: HostPort
  before(async () => {
    server = createHttp1Server({
      onRequest(req, res) {
        switch (req.target) {
          case '/send-lies':
            return res.send(200, ['Content-Length', '100', 'content-length', '1'], 'abc')
          case '/head':
            return res.send(200, ['Content-Length', '1234'])
          case '/two-lengths':
            res.writeHead(200, ['Content-Length', '3', 'Content-Length', '30'])
            return res.end('abc')
          case '/bad-length':
            res.writeHead(200, ['Content-Length', '-3'])
            return res.end('abc')
          case '/too-long':
            res.writeHead(200, ['Content-Length', '3'])
            res.write('abc')
            res.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')
            return res.end()
          case '/too-short':
            res.writeHead(200, ['Content-Length', '10'])
            return res.end('abc')
          default:
            return res.send(200, [], 'ok')
        }
      },
    })
    addr = await server.listen({ host: '127.0.0.1', port: 0 })
  })
  after(async () => {
    await assertNoConnections(server)
    await server.close({ drainTimeoutMs: 100 })
  })

  test('a response field name that is not a token is never written', async (t) => {
    const names = ['Transfer-Encoding ', 'Content-Length\t', 'X A', 'X:A', '', 'X\x7f']
    const bad = createHttp1Server({
      onRequest(req, res) {
        const name = names[Number(req.target.slice(1))] as string
        try {
          res.send(200, [name, 'chunked'], 'body')
        } catch {
          res.send(502, [], '')
        }
      },
    })
    const a = await bad.listen({ host: '127.0.0.1', port: 0 })
    t.after(() => bad.close({ drainTimeoutMs: 100 }))
    for (const [i, name] of names.entries()) {
      const r = await exchange(a, GET(`/${i}`, 'Connection: close\r\n'))
      assert.deepEqual(statuses(r.raw), [502], `${JSON.stringify(name)}: ${JSON.stringify(r.raw)}`)
    }
  })

  const lengths = (raw: string) => [...raw.matchAll(/\r\nContent-Length: ([^\r]*)/gi)].map((m) => m[1])

  test('send(): a caller Content-Length never appears next to the real one', async () => {
    const r = await exchange(addr, `${GET('/send-lies')}${GET('/', 'Connection: close\r\n')}`)
    assert.deepEqual(parseReplies(r.raw), [200, 200], r.raw)
    assert.deepEqual(lengths(r.raw), ['3', '2'])
  })

  test('send() for HEAD keeps the length of the body a GET would get, once', async () => {
    const r = await exchange(addr, 'HEAD /head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    assert.deepEqual(lengths(r.raw), ['1234'], r.raw)
    assert.ok(r.raw.endsWith('\r\n\r\n'))
  })

  for (const target of ['/two-lengths', '/bad-length']) {
    test(`writeHead() with ${target.slice(1)}: sent chunked with no Content-Length`, async () => {
      const r = await exchange(addr, `${GET(target)}${GET('/', 'Connection: close\r\n')}`)
      assert.deepEqual(lengths(r.raw), ['2'], r.raw)
      assert.match(r.raw, /Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP\/1\.1 200 /)
    })
  }

  test('a body longer than its Content-Length is cut there and the connection closed: no smuggled response', async () => {
    const r = await exchange(addr, `${GET('/too-long')}${GET('/')}`, { end: false })
    assert.deepEqual(statuses(r.raw), [200], r.raw)
    assert.ok(r.raw.endsWith('\r\n\r\nabc'), JSON.stringify(r.raw))
    assert.equal(r.closed, true)
  })

  test('a body shorter than its Content-Length: the connection is closed rather than reused', async () => {
    const r = await exchange(addr, `${GET('/too-short')}${GET('/')}`, { end: false })
    assert.deepEqual(statuses(r.raw), [200], r.raw)
    assert.ok(r.raw.endsWith('\r\n\r\nabc'), JSON.stringify(r.raw))
    assert.equal(r.closed, true, 'closed, so the client sees the body is short')
  })
})

describe('http1 core: connection limit and shutdown under hostile clients', () => {
  test('over maxConnections a connection is closed at once; room comes back when others leave', async (t) => {
    const f = await fixture({ maxConnections: 5 })
    t.after(() => f.server.close({ drainTimeoutMs: 100 }))
    const held: net.Socket[] = []
    for (let i = 0; i < 5; i++) {
      const s = net.connect(f.addr.port, f.addr.host)
      s.on('error', () => undefined)
      await once(s, 'connect')
      s.write('GET / HT')
      held.push(s)
    }
    assert.ok(await waitFor(() => f.server.connectionCount === 5))
    const over = await exchange(f.addr, GET('/over', 'Connection: close\r\n'), { end: false })
    assert.equal(over.closed, true)
    assert.equal(over.raw, '')
    for (const s of held) s.destroy()
    await assertNoConnections(f.server)
    const ok = await exchange(f.addr, GET('/', 'Connection: close\r\n'))
    assert.deepEqual(statuses(ok.raw), [200])
  })

  test('close() with a slow head, a stalled body, a paused reader and an idle client attached: all are cut', async () => {
    const f = await fixture({ headerTimeoutMs: 60_000, bodyTimeoutMs: 60_000, sendTimeoutMs: 60_000, keepAliveTimeoutMs: 60_000 })
    const sockets: net.Socket[] = []
    for (const bytes of ['GET / HTTP/1.1\r\nHo', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nab', GET('/big'), GET('/')]) {
      const s = net.connect(f.addr.port, f.addr.host)
      s.on('error', () => undefined)
      await once(s, 'connect')
      s.pause()
      s.write(bytes)
      sockets.push(s)
    }
    assert.ok(await waitFor(() => f.seen.length === 3), 'three requests reached the handler')
    await f.server.close({ drainTimeoutMs: 500 })
    assert.equal(f.server.connectionCount, 0)
    for (const s of sockets) s.destroy()
  })
})

/** Polls `cond` every 50 ms, `tries` times at most. */
async function waitFor(cond: () => boolean, tries = 100): Promise<boolean> {
  for (let i = 0; i < tries && !cond(); i++) await new Promise((r) => setTimeout(r, 50))
  return cond()
}

/** mulberry32: a tiny seeded PRNG so every run mutates the same way. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Splits a reply into responses, checking each is well formed (status line, fields, a
 * Content-Length body); returns the statuses or throws on anything else.
 */
function parseReplies(raw: string): number[] {
  const out: number[] = []
  let at = 0
  while (at < raw.length) {
    const headEnd = raw.indexOf('\r\n\r\n', at)
    if (headEnd === -1) throw new Error(`truncated response head at ${at}`)
    const head = raw.slice(at, headEnd)
    const m = /^HTTP\/1\.1 (\d{3}) [^\r\n]*(\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [^\r\n]*)*$/.exec(head)
    if (!m) throw new Error(`malformed response head ${JSON.stringify(head)}`)
    const length = /\r\nContent-Length: (\d+)/.exec(head)
    if (!length) throw new Error('response without Content-Length')
    out.push(Number(m[1]))
    at = headEnd + 4 + Number(length[1])
    if (at > raw.length) throw new Error('truncated response body')
  }
  return out
}

const PROXY_V1 = 'PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\n'
const PROXY_V2 = encodeProxyV2({ address: '192.0.2.1', port: 1234 }, { address: '192.0.2.2', port: 80 }).toString('latin1')

describe('http1 core: seeded mutation fuzzer', () => {
  const runs = [
    { label: '2,000 mutated requests', COUNT: 2000, seed: 0x5eed, proxy: undefined },
    { label: '1,000 mutated requests behind PROXY v1 and v2 headers', COUNT: 1000, seed: 0xbad, proxy: 'both' },
  ] as const
  for (const { label, COUNT, seed, proxy } of runs) test(`${label}: never a throw, always well-formed answers or a close, nothing after a refusal`, async (t) => {
    const f = await fixture({ headerTimeoutMs: 1000, bodyTimeoutMs: 1000, keepAliveTimeoutMs: 1000, proxyProtocol: proxy !== undefined })
    t.after(() => f.server.close({ drainTimeoutMs: 100 }))
    const errors: string[] = []
    const uncaught = (err: Error) => errors.push(err.stack ?? String(err))
    process.on('uncaughtException', uncaught)
    t.after(() => process.off('uncaughtException', uncaught))

    const corpus = [
      GET('/a'),
      `${GET('/a')}${GET('/b')}`,
      'POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello',
      'POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: 1\r\n\r\n',
      'GET /e HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
      `POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc${GET('/g')}`,
    ].flatMap((c) => (proxy ? [`${PROXY_V1}${c}`, `${PROXY_V2}${c}`] : [c]))
    const interesting = ['\r', '\n', '\0', ' ', '\t', ':', ',', ';', '0', 'f', '-', '+', '\x7f', '\xff', '\r\n', '\r\n\r\n']
    const fields = [
      'Transfer-Encoding: chunked\r\n',
      'Transfer-Encoding: xchunked\r\n',
      'Transfer-Encoding : chunked\r\n',
      'Content-Length: 3\r\n',
      'Content-Length: -1\r\n',
      'Content-Length: 99999999999999999999\r\n',
      'Host: y\r\n',
      ' folded\r\n',
      'Connection: close\r\n',
      `X-Big: ${'b'.repeat(500)}\r\n`,
    ]
    const rand = prng(seed)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T
    const mutate = (input: string): string => {
      let s = input
      const n = 1 + Math.floor(rand() * 4)
      for (let i = 0; i < n; i++) {
        const at = Math.floor(rand() * (s.length + 1))
        switch (Math.floor(rand() * 7)) {
          case 0:
            s = s.slice(0, at) + String.fromCharCode(Math.floor(rand() * 256)) + s.slice(at + 1)
            break
          case 1:
            s = s.slice(0, at) + pick(interesting) + s.slice(at)
            break
          case 2:
            s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 4))
            break
          case 3: {
            const lineStart = s.indexOf('\r\n', at)
            s = lineStart === -1 ? s + pick(fields) : s.slice(0, lineStart + 2) + pick(fields) + s.slice(lineStart + 2)
            break
          }
          case 4:
            s = s.slice(0, at)
            break
          case 5:
            s = s + s.slice(at, at + 40)
            break
          default:
            s = s.slice(0, at) + s.slice(at, at + 8).toUpperCase() + s.slice(at + 8)
        }
      }
      return s
    }

    const deadline = Date.now() + 120_000
    let sent = 0
    let refusals = 0
    const worker = async () => {
      while (sent < COUNT && Date.now() < deadline) {
        sent++
        const input = mutate(pick(corpus))
        const r = await exchange(f.addr, Buffer.from(input, 'latin1'), { end: rand() < 0.95, waitMs: 8000 })
        if (!r.closed) {
          errors.push(`not closed: ${JSON.stringify(input)}`)
          continue
        }
        let got: number[]
        try {
          got = parseReplies(r.raw)
        } catch (err) {
          errors.push(`${(err as Error).message} for ${JSON.stringify(input)}: ${JSON.stringify(r.raw)}`)
          continue
        }
        const refusal = got.findIndex((s) => s !== 200)
        if (refusal !== -1) {
          refusals++
          if (refusal !== got.length - 1) errors.push(`answered after a refusal: ${JSON.stringify(input)}`)
        }
      }
    }
    await Promise.all(Array.from({ length: 16 }, worker))
    assert.deepEqual(errors.slice(0, 5), [])
    assert.ok(sent >= 500, `only ${sent} requests within the bound`)
    assert.ok(refusals > 0, 'the mutations produced refusals')
    await assertNoConnections(f.server)
    const r = await exchange(f.addr, `${proxy ? PROXY_V1 : ''}${GET('/still-ok', 'Connection: close\r\n')}`)
    assert.deepEqual(statuses(r.raw), [200])
  })
})
