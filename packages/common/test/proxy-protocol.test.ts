import assert from 'node:assert/strict'
import net from 'node:net'
import { test } from 'node:test'
import { encodeProxyV1, encodeProxyV2, parseProxyHeader, readProxyHeader } from '../src/index.js'

const v4 = { source: { address: '192.0.2.1', port: 56324 }, destination: { address: '198.51.100.7', port: 443 } }
const v6 = { source: { address: '2001:db8::1', port: 1 }, destination: { address: '::1', port: 65535 } }

test('v1 encodes the spec line and parses back', () => {
  const line = encodeProxyV1(v4.source, v4.destination)
  assert.equal(line.toString(), 'PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n')
  const r = parseProxyHeader(Buffer.concat([line, Buffer.from('GET / HTTP/1.1\r\n')]))
  assert.equal(r.kind, 'ok')
  assert.ok(r.kind === 'ok')
  assert.equal(r.length, line.length)
  assert.deepEqual(r.header.source, v4.source)
  assert.deepEqual(r.header.destination, v4.destination)
})

test('v1 and v2 round-trip IPv6', () => {
  for (const encode of [encodeProxyV1, encodeProxyV2]) {
    const r = parseProxyHeader(encode(v6.source, v6.destination))
    assert.ok(r.kind === 'ok')
    assert.equal(r.header.family, 'TCP6')
    assert.deepEqual(r.header.source, v6.source)
    assert.deepEqual(r.header.destination, v6.destination)
  }
})

test('v2 round-trips IPv4', () => {
  const r = parseProxyHeader(encodeProxyV2(v4.source, v4.destination))
  assert.ok(r.kind === 'ok')
  assert.equal(r.header.version, 2)
  assert.deepEqual(r.header.source, v4.source)
})

test('every strict prefix of a header is incomplete, never ok or invalid', () => {
  for (const h of [encodeProxyV1(v4.source, v4.destination), encodeProxyV2(v6.source, v6.destination)]) {
    for (let i = 1; i < h.length; i++) assert.equal(parseProxyHeader(h.subarray(0, i)).kind, 'incomplete', `prefix ${i}`)
  }
})

test('malformed headers are invalid', () => {
  const bad = [
    'GET / HTTP/1.1\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n',
    'PROXY TCP4 ::1 5.6.7.8 1 2\r\n',
    'PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n',
    `PROXY TCP4 ${'1'.repeat(120)}`,
  ]
  for (const b of bad) assert.equal(parseProxyHeader(Buffer.from(b)).kind, 'invalid', JSON.stringify(b))
})

test('readProxyHeader leaves the bytes after the header for the next reader', async (t) => {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => server.close())
  const got = new Promise<{ src: string; rest: string }>((resolve, reject) => {
    server.once('connection', (socket) => {
      readProxyHeader(socket).then((header) => {
        let rest = ''
        socket.setEncoding('latin1')
        socket.on('data', (c: string) => {
          rest += c
        })
        socket.on('end', () => resolve({ src: header.source?.address ?? '', rest }))
        socket.resume()
      }, reject)
    })
  })
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
  const header = encodeProxyV1(v4.source, v4.destination)
  // Split across writes to exercise reassembly.
  client.write(header.subarray(0, 10))
  client.end(Buffer.concat([header.subarray(10), Buffer.from('payload')]))
  assert.deepEqual(await got, { src: '192.0.2.1', rest: 'payload' })
})
