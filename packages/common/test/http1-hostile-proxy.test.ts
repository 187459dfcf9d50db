import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import { describe, test } from 'node:test'
import {
  createHttp1Server,
  encodeProxyV1,
  encodeProxyV2,
  type HostPort,
  parseProxyHeader,
  readProxyHeader,
} from '../src/index.js'

/** Hostile PROXY protocol headers: the codec alone, then the HTTP core reading them off real sockets. */

const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])

/** A v2 header with every field chosen by the caller, including a `length` that may lie. */
function v2(verCmd: number, fam: number, length: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4)
  head[0] = verCmd
  head[1] = fam
  head.writeUInt16BE(length, 2)
  return Buffer.concat([SIG, head, body])
}

const V1 = encodeProxyV1({ address: '192.0.2.1', port: 1234 }, { address: '192.0.2.2', port: 443 })
const V2 = encodeProxyV2({ address: '192.0.2.1', port: 1234 }, { address: '192.0.2.2', port: 443 })
const V2_6 = encodeProxyV2({ address: '2001:db8::1', port: 1234 }, { address: '2001:db8::2', port: 443 })

describe('PROXY protocol codec against hostile input', () => {
  test('every strict prefix of a valid v1 or v2 header is incomplete, never ok or invalid', () => {
    for (const whole of [V1, V2, V2_6, Buffer.from('PROXY UNKNOWN\r\n')]) {
      for (let i = 0; i < whole.length; i++) {
        assert.deepEqual(parseProxyHeader(whole.subarray(0, i)), { kind: 'incomplete' }, `prefix ${i} of ${whole.toString('hex')}`)
      }
      assert.equal(parseProxyHeader(whole).kind, 'ok')
    }
  })

  const invalid: [string, Buffer][] = [
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\n')],
    ['a TLS ClientHello', Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05])],
    ['lower-case proxy', Buffer.from('proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['PROXY without its space', Buffer.from('PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 over 107 bytes without CRLF', Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`)],
    ['v1 over 107 bytes with CRLF', Buffer.from(`PROXY UNKNOWN ${'x'.repeat(100)}\r\n`)],
    ['v1 ended by a bare LF then more', Buffer.from(`PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n${'x'.repeat(120)}`)],
    ['v1 unknown family', Buffer.from('PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 missing a port', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n')],
    ['v1 extra field', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n')],
    ['v1 two spaces', Buffer.from('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 IPv6 under TCP4', Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n')],
    ['v1 IPv4 under TCP6', Buffer.from('PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 an address with a NUL', Buffer.from('PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n')],
    ['v1 a host name', Buffer.from('PROXY TCP4 localhost 5.6.7.8 1 2\r\n')],
    ['v1 port 65536', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n')],
    ['v1 port with a leading zero', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n')],
    ['v1 negative port', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n')],
    ['v1 hex port', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 0x50 2\r\n')],
    ['v2 a corrupt signature', Buffer.concat([Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x55, 0x0a]), Buffer.alloc(20)])],
    ['v2 version 1', v2(0x11, 0x11, 12, Buffer.alloc(12))],
    ['v2 version 3', v2(0x31, 0x11, 12, Buffer.alloc(12))],
    ['v2 command 2', v2(0x22, 0x11, 12, Buffer.alloc(12))],
    ['v2 command 15', v2(0x2f, 0x11, 12, Buffer.alloc(12))],
    ['v2 TCP4 with a length shorter than its addresses', v2(0x21, 0x11, 4, Buffer.alloc(4))],
    ['v2 TCP6 with a length shorter than its addresses', v2(0x21, 0x21, 12, Buffer.alloc(12))],
    ['v2 an unknown family', v2(0x21, 0x41, 12, Buffer.alloc(12))],
    ['v2 an unknown transport', v2(0x21, 0x13, 12, Buffer.alloc(12))],
  ]
  for (const [name, bytes] of invalid) {
    test(`invalid: ${name}`, () => {
      assert.equal(parseProxyHeader(bytes).kind, 'invalid')
    })
  }

  test('a v2 length that claims more than was sent is incomplete, and bounded at 64 KiB', () => {
    assert.equal(parseProxyHeader(v2(0x21, 0x11, 0xffff, Buffer.alloc(100))).kind, 'incomplete')
    const r = parseProxyHeader(v2(0x21, 0x11, 0xffff, Buffer.alloc(0xffff + 10)))
    assert.equal(r.kind, 'ok')
    assert.equal(r.kind === 'ok' && r.length, 16 + 0xffff)
  })

  test('v2 LOCAL with garbage TLVs is accepted with no addresses, as the spec says', () => {
    const r = parseProxyHeader(v2(0x20, 0x11, 40, Buffer.alloc(40, 0xff)))
    assert.equal(r.kind, 'ok')
    assert.equal(r.kind === 'ok' && r.header.source, undefined)
  })

  test('v1 UNKNOWN ignores what follows it on the line, as the spec says', () => {
    const r = parseProxyHeader(Buffer.from('PROXY UNKNOWN whatever 1 2\r\nGET'))
    assert.equal(r.kind, 'ok')
    assert.equal(r.kind === 'ok' && r.length, 'PROXY UNKNOWN whatever 1 2\r\n'.length)
  })
})

/** Sends bytes, resolves with what came back and whether the server closed within 5 s. */
function exchange(addr: HostPort, bytes: Buffer | string, end: boolean): Promise<{ raw: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(addr.port, addr.host, () => {
      s.write(bytes)
      if (end) s.end()
    })
    let raw = ''
    const timer = setTimeout(() => {
      s.destroy()
      resolve({ raw, closed: false })
    }, 5000)
    s.setEncoding('latin1')
    s.on('data', (c: string) => {
      raw += c
    })
    s.on('error', () => undefined)
    s.on('close', () => {
      clearTimeout(timer)
      resolve({ raw, closed: true })
    })
  })
}

describe('the HTTP core behind PROXY protocol against hostile headers', () => {
  test('bad, truncated and lying headers are closed without an answer; nothing reaches the handler', async (t) => {
    let handled = 0
    const server = createHttp1Server({
      proxyProtocol: true,
      headerTimeoutMs: 60_000,
      onRequest(req, res) {
        handled++
        res.send(200, [], `${req.remoteAddress}:${req.remotePort}`)
      },
    })
    const a = await server.listen({ host: '127.0.0.1', port: 0 })
    t.after(() => server.close({ drainTimeoutMs: 100 }))
    const req = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
    const cases: [string, Buffer | string, boolean][] = [
      ['no header at all', req, false],
      ['a v1 header cut short, then FIN', 'PROXY TCP4 192.0.2.1 19', true],
      ['a v2 header cut short, then FIN', V2.subarray(0, 20), true],
      ['a v2 length that lies, then FIN', Buffer.concat([v2(0x21, 0x11, 500, Buffer.alloc(12)), Buffer.from(req)]), true],
      ['a v2 TCP4 length too short for its addresses', Buffer.concat([v2(0x21, 0x11, 4, Buffer.alloc(4)), Buffer.from(req)]), false],
      ['a v1 header ended by a bare LF', `PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n${req}${'x'.repeat(100)}`, false],
      ['an oversized v1 header', `PROXY UNKNOWN ${'x'.repeat(200)}\r\n${req}`, false],
      ['random bytes', Buffer.from('8f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c', 'hex'), false],
    ]
    for (const [name, bytes, end] of cases) {
      const r = await exchange(a, bytes, end)
      assert.equal(r.closed, true, `${name}: closed`)
      assert.equal(r.raw, '', `${name}: no answer`)
    }
    assert.equal(handled, 0)
    const ok = await exchange(a, Buffer.concat([V2_6, Buffer.from(req)]), false)
    assert.match(ok.raw, /HTTP\/1\.1 200 [\s\S]*2001:db8::1:1234$/)
    const twice = await exchange(a, Buffer.concat([V1, V1, Buffer.from(req)]), false)
    assert.match(twice.raw, /^HTTP\/1\.1 400 /, 'a second PROXY line is a malformed request, not a new address')
    for (let i = 0; i < 100 && server.connectionCount > 0; i++) await new Promise((r) => setTimeout(r, 50))
    assert.equal(server.connectionCount, 0)
  })
})

describe('readProxyHeader over a real socket', () => {
  async function pair(t: { after(fn: () => unknown): void }): Promise<{ client: net.Socket; server: net.Socket }> {
    const listener = net.createServer({ allowHalfOpen: true })
    listener.listen(0, '127.0.0.1')
    await once(listener, 'listening')
    const { port } = listener.address() as net.AddressInfo
    const client = net.connect(port, '127.0.0.1')
    client.on('error', () => undefined)
    const [server] = (await once(listener, 'connection')) as [net.Socket]
    t.after(() => {
      client.destroy()
      server.destroy()
      listener.close()
    })
    return { client, server }
  }

  test('a header split across writes, with data behind it that stays readable', async (t) => {
    const { client, server } = await pair(t)
    const header = readProxyHeader(server, 5000)
    client.write(V2.subarray(0, 7))
    await new Promise((r) => setTimeout(r, 20))
    client.write(Buffer.concat([V2.subarray(7), Buffer.from('after')]))
    assert.equal((await header).source?.address, '192.0.2.1')
    server.resume()
    const [data] = (await once(server, 'data')) as [Buffer]
    assert.equal(data.toString(), 'after')
  })

  for (const [name, bytes] of [
    ['wrong signature', Buffer.from('GET / HTTP/1.1\r\n')],
    ['FIN mid-header', Buffer.from('PROXY TCP4 1.2')],
  ] as const) {
    test(`rejects on ${name}`, async (t) => {
      const { client, server } = await pair(t)
      const header = readProxyHeader(server, 5000)
      client.end(bytes)
      await assert.rejects(header, /PROXY protocol/)
    })
  }

  test('rejects a client that resets mid-header', async (t) => {
    const { client, server } = await pair(t)
    const header = readProxyHeader(server, 5000)
    client.write('PROXY TCP4', () => client.resetAndDestroy())
    await assert.rejects(header)
  })

  test('rejects a client that sends nothing, at its timeout', async (t) => {
    const { server } = await pair(t)
    await assert.rejects(readProxyHeader(server, 300), /timed out/)
  })
})
