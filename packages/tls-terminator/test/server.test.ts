import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { describe, test } from 'node:test'
import tls from 'node:tls'
import { parseProxyHeader } from '@edgestack/common'
import { createTlsTerminator, loadStunnelConf, randomTicketKeys, type TerminatorModel } from '../src/index.js'
import {
  CA,
  captureLogger,
  certLines,
  fixture,
  scratch,
  startBackend,
  tlsRoundTrip,
  writeConf,
} from './helpers.js'

type T = Parameters<typeof scratch>[0]

/** Loads the lines as a stunnel.conf, starts the terminator in-process; returns its ports. */
async function start(t: T, lines: string[], opts: { maxConnections?: number } = {}) {
  const dir = await scratch(t)
  const file = await writeConf(dir, lines)
  const { model } = await loadStunnelConf(file, opts)
  const log = captureLogger()
  const terminator = createTlsTerminator(model, log.logger)
  const addresses = await terminator.listen()
  t.after(() => terminator.close({ drainTimeoutMs: 0 }))
  return { terminator, ports: addresses.map((a) => a.port), log, file, dir }
}

const clientCert = { cert: readFileSync(fixture('client.crt')), key: readFileSync(fixture('client.key')) }
const stranger = { cert: readFileSync(fixture('stranger.crt')), key: readFileSync(fixture('stranger.key')) }

describe('tls-terminator in-process, real sockets', () => {
  test('pipes bytes both ways and logs service, client, backend, TLS, bytes, why', async (t) => {
    const backend = await startBackend(t)
    const { ports, log } = await start(t, [...certLines, '[web]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`])
    const r = await tlsRoundTrip(ports[0] as number, 'hello')
    assert.equal(r.error, undefined)
    assert.equal(r.reply.toString(), 'hello')
    const line = await log.waitFor(/ closed: /)
    assert.match(
      line,
      new RegExp(
        `^info closed: 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${backend.port} TLSv1\\.3 TLS_\\w+ service=web sni=localhost in=5 out=5 ms=\\d+ (client|backend) closed conn=\\d+$`,
      ),
    )
  })

  test('an SNI name with LF, a control byte and a quote is escaped in the log line (no forged lines)', async (t) => {
    const backend = await startBackend(t)
    const { ports, log } = await start(t, [...certLines, '[web]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`])
    await tlsRoundTrip(ports[0] as number, 'x', { servername: 'evil\nhost\x01"x', rejectUnauthorized: false })
    const line = await log.waitFor(/ closed: /)
    assert.ok(line.includes('sni=evil\\nhost\\x01\\"x '), line)
    assert.doesNotMatch(line, /[\x00-\x1f]/)
  })

  test('with no curves in the file, a client offering only the hybrid X25519MLKEM768 group completes the handshake', async (t) => {
    const backend = await startBackend(t)
    const { ports } = await start(t, [...certLines, '[web]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`])
    const pq = await tlsRoundTrip(ports[0] as number, 'hello', { ecdhCurve: 'X25519MLKEM768' })
    assert.equal(pq.error, undefined)
    assert.equal(pq.reply.toString(), 'hello')
    // Named curves in the file are the whole list, as in stunnel: no hybrid group then.
    const classic = await start(t, [...certLines, 'curves = X25519:P-256', '[web]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`])
    const refused = await tlsRoundTrip(classic.ports[0] as number, 'hello', { ecdhCurve: 'X25519MLKEM768' })
    assert.ok(refused.error, 'a client offering only a group the file leaves out must not complete the handshake')
  })

  test('SNI picks the secondary service and its certificate; wildcards; the primary otherwise', async (t) => {
    const primary = await startBackend(t, { reply: 'primary' })
    const secondary = await startBackend(t, { reply: 'secondary' })
    const { ports } = await start(t, [
      ...certLines,
      '[main]',
      'accept = 127.0.0.1:0',
      `connect = ${primary.port}`,
      '[example]',
      'sni = main:www.example.com',
      'sni = main:*.example.org',
      `connect = ${secondary.port}`,
      `cert = ${fixture('example.crt')}`,
      `key = ${fixture('example.key')}`,
    ])
    const port = ports[0] as number
    const www = await tlsRoundTrip(port, '', { servername: 'WWW.Example.com' })
    assert.equal(www.error, undefined)
    assert.equal(www.reply.toString(), 'secondary')
    assert.equal(www.peerSubject, 'CN=www.example.com')
    // stunnel's `*` is a suffix match, deeper than a certificate wildcard: the client has to
    // accept the name mismatch for this one.
    const deep = await tlsRoundTrip(port, '', { servername: 'a.b.example.org', checkServerIdentity: () => undefined })
    assert.equal(deep.reply.toString(), 'secondary')
    const local = await tlsRoundTrip(port, '', { servername: 'localhost' })
    assert.equal(local.reply.toString(), 'primary')
    assert.equal(local.peerSubject, 'CN=localhost')
    const other = await tlsRoundTrip(port, '', { servername: 'example.org', checkServerIdentity: () => undefined })
    assert.equal(other.reply.toString(), 'primary')
  })

  test('verifyChain: no client certificate or one from another CA is refused; ours passes', async (t) => {
    const backend = await startBackend(t)
    const { ports, log } = await start(t, [
      ...certLines,
      '[mtls]',
      'accept = 127.0.0.1:0',
      `connect = ${backend.port}`,
      `CAfile = ${fixture('ca.crt')}`,
      'verifyChain = yes',
    ])
    const port = ports[0] as number
    const none = await tlsRoundTrip(port, 'x')
    assert.equal(none.reply.length, 0)
    assert.ok(none.error, 'the handshake or first read fails')
    const wrong = await tlsRoundTrip(port, 'x', stranger)
    assert.equal(wrong.reply.length, 0)
    const ok = await tlsRoundTrip(port, 'x', clientCert)
    assert.equal(ok.reply.toString(), 'x')
    assert.equal(backend.received.length, 1, 'refused clients never reach the backend')
    assert.ok(log.lines.some((l) => /closed: .* service=mtls .* in=1 out=1 /.test(l)))
  })

  test('verifyPeer pins the exact certificate; requireCert = no lets certificate-less clients in', async (t) => {
    const backend = await startBackend(t)
    const { ports, log } = await start(t, [
      ...certLines,
      '[pinned]',
      'accept = 127.0.0.1:0',
      `connect = ${backend.port}`,
      `CAfile = ${fixture('stranger.crt')}`,
      'verifyPeer = yes',
      '[optional]',
      'accept = 127.0.0.1:0',
      `connect = ${backend.port}`,
      `CAfile = ${fixture('ca.crt')}`,
      'verifyChain = yes',
      'requireCert = no',
    ])
    const [pinned, optional] = ports as [number, number]
    assert.equal((await tlsRoundTrip(pinned, 'a', stranger)).reply.toString(), 'a')
    assert.equal((await tlsRoundTrip(pinned, 'b', clientCert)).reply.length, 0)
    await log.waitFor(/service=pinned .* refused: client certificate "CN=alice" is not in CAfile\/CApath \(verifyPeer\)/)
    assert.equal((await tlsRoundTrip(pinned, 'c')).reply.length, 0)
    await log.waitFor(/refused: no client certificate \(requireCert\)/)
    assert.equal((await tlsRoundTrip(optional, 'd')).reply.toString(), 'd')
    assert.equal((await tlsRoundTrip(optional, 'e', clientCert)).reply.toString(), 'e')
    assert.equal((await tlsRoundTrip(optional, 'f', stranger)).reply.length, 0)
    await log.waitFor(/service=optional .* refused: client certificate "CN=mallory" not verified/)
  })

  test('client certificate policy per SNI service: the secondary requires one, the primary does not', async (t) => {
    const backend = await startBackend(t)
    const { ports, log } = await start(t, [
      ...certLines,
      '[main]',
      'accept = 127.0.0.1:0',
      `connect = ${backend.port}`,
      '[sec]',
      'sni = main:www.example.com',
      `connect = ${backend.port}`,
      `cert = ${fixture('example.crt')}`,
      `key = ${fixture('example.key')}`,
      `CAfile = ${fixture('ca.crt')}`,
      'verifyChain = yes',
    ])
    const port = ports[0] as number
    const www = { servername: 'www.example.com' }
    assert.equal((await tlsRoundTrip(port, 'a', { ...www, ...clientCert })).reply.toString(), 'a')
    assert.equal((await tlsRoundTrip(port, 'b', www)).reply.length, 0)
    assert.equal((await tlsRoundTrip(port, 'c', { ...www, ...stranger })).reply.length, 0)
    assert.equal((await tlsRoundTrip(port, 'd')).reply.toString(), 'd')
    await log.waitFor(/service=sec sni=www\.example\.com in=0 out=0 ms=\d+ refused: no client certificate/)
    await log.waitFor(/service=sec .* refused: client certificate "CN=mallory" not verified: DEPTH_ZERO_SELF_SIGNED_CERT/)
  })

  test('protocol = proxy: the backend reads a PROXY v1 line with the real client address first', async (t) => {
    const backend = await startBackend(t, { reply: 'ok' })
    const { ports } = await start(t, [
      ...certLines,
      '[p]',
      'accept = 127.0.0.1:0',
      `connect = ${backend.port}`,
      'protocol = proxy',
    ])
    const port = ports[0] as number
    const socket = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(fixture('ca.crt')), servername: 'localhost' })
    await once(socket, 'secureConnect')
    const clientPort = socket.localPort
    socket.resume()
    socket.end('GET / HTTP/1.0\r\n\r\n')
    await once(socket, 'close')
    const got = Buffer.concat(backend.received[0] ?? [])
    const parsed = parseProxyHeader(got)
    assert.equal(parsed.kind, 'ok')
    if (parsed.kind !== 'ok') return
    assert.equal(got.subarray(0, parsed.length).toString(), `PROXY TCP4 127.0.0.1 127.0.0.1 ${clientPort} ${port}\r\n`)
    assert.equal(got.subarray(parsed.length).toString(), 'GET / HTTP/1.0\r\n\r\n')
  })

  test('several connect: prio skips a dead backend; rr takes turns', async (t) => {
    const dead = net.createServer()
    dead.listen(0, '127.0.0.1')
    await once(dead, 'listening')
    const deadPort = (dead.address() as net.AddressInfo).port
    await new Promise<void>((resolve) => dead.close(() => resolve()))
    const a = await startBackend(t, { reply: 'a' })
    const b = await startBackend(t, { reply: 'b' })
    const { ports } = await start(t, [
      ...certLines,
      '[prio]',
      'accept = 127.0.0.1:0',
      `connect = ${deadPort}`,
      `connect = ${a.port}`,
      `connect = ${b.port}`,
      '[rr]',
      'accept = 127.0.0.1:0',
      `connect = ${a.port}`,
      `connect = ${b.port}`,
      'failover = rr',
    ])
    const [prio, rr] = ports as [number, number]
    const prioReplies = []
    for (let i = 0; i < 3; i++) prioReplies.push((await tlsRoundTrip(prio, '')).reply.toString())
    assert.deepEqual(prioReplies, ['a', 'a', 'a'])
    const rrReplies = []
    for (let i = 0; i < 4; i++) rrReplies.push((await tlsRoundTrip(rr, '')).reply.toString())
    assert.deepEqual(rrReplies, ['a', 'b', 'a', 'b'])
  })

  test('half-close: the client ends its side and still reads the whole answer', async (t) => {
    // The backend answers only after it has seen the client's end.
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      const chunks: Buffer[] = []
      s.on('data', (c: Buffer) => chunks.push(c))
      s.on('end', () => s.end(`got ${Buffer.concat(chunks).length} bytes then your end`))
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const { ports } = await start(t, [
      ...certLines,
      '[h]',
      'accept = 127.0.0.1:0',
      `connect = ${(server.address() as net.AddressInfo).port}`,
    ])
    const r = await tlsRoundTrip(ports[0] as number, 'x'.repeat(1000))
    assert.equal(r.error, undefined)
    assert.equal(r.reply.toString(), 'got 1000 bytes then your end')
  })

  test('TIMEOUTidle closes a quiet connection and says so', async (t) => {
    const backend = await startBackend(t)
    const { ports, log } = await start(t, [
      ...certLines,
      '[idle]',
      'accept = 127.0.0.1:0',
      `connect = ${backend.port}`,
      'TIMEOUTidle = 1',
    ])
    const s = tls.connect({ host: '127.0.0.1', port: ports[0] as number, ca: readFileSync(fixture('ca.crt')), servername: 'localhost' })
    s.on('error', () => undefined)
    await once(s, 'secureConnect')
    s.write('ping')
    await once(s, 'data')
    await once(s, 'close')
    await log.waitFor(/service=idle sni=localhost in=4 out=4 ms=\d+ idle for 1 s \(TIMEOUTidle\) conn=\d+$/)
  })

  test('TIMEOUTclose bounds the wait for a client that never closes after the backend did', async (t) => {
    const backend = await startBackend(t, { reply: 'bye' })
    const { ports, log } = await start(t, [
      ...certLines,
      '[c]',
      'accept = 127.0.0.1:0',
      `connect = ${backend.port}`,
      'TIMEOUTclose = 1',
    ])
    // allowHalfOpen: this client would keep its side open forever.
    const raw = net.connect({ host: '127.0.0.1', port: ports[0] as number, allowHalfOpen: true })
    const s = tls.connect({ socket: raw, ca: readFileSync(fixture('ca.crt')), servername: 'localhost' })
    s.on('error', () => undefined)
    s.resume()
    await once(s, 'secureConnect')
    await waitUntil(() => backend.sockets.length === 1)
    ;(backend.sockets[0] as net.Socket).end()
    await once(s, 'end')
    assert.equal(s.writable, true, 'the client keeps its side open')
    // Only TIMEOUTclose can end this connection on the server side.
    await log.waitFor(/service=c sni=localhost in=0 out=3 ms=\d+ backend closed conn=\d+$/)
    s.destroy()
  })

  test('TIMEOUTbusy drops a client that connects and sends nothing', async (t) => {
    const backend = await startBackend(t)
    const { ports } = await start(t, [...certLines, '[b]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`, 'TIMEOUTbusy = 1'])
    const raw = net.connect(ports[0] as number, '127.0.0.1')
    raw.on('error', () => undefined)
    const closed = once(raw, 'close')
    const guard = setTimeout(() => raw.destroy(new Error('not dropped within 10 s')), 10_000)
    await closed
    clearTimeout(guard)
    assert.equal(backend.received.length, 0)
  })

  test('the connection limit drops new clients with one clear log line', async (t) => {
    const backend = await startBackend(t)
    const { ports, log } = await start(t, [...certLines, '[l]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`], {
      maxConnections: 1,
    })
    const port = ports[0] as number
    const first = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(fixture('ca.crt')), servername: 'localhost' })
    first.on('error', () => undefined)
    first.resume()
    await once(first, 'secureConnect')
    const second = await tlsRoundTrip(port, 'x')
    assert.equal(second.reply.length, 0)
    await log.waitFor(/^warn \[l\] connection limit 1 reached: dropping new connections$/)
    first.end()
    await once(first, 'close')
  })

  test('sessions resume (TLS 1.3 tickets)', async (t) => {
    const backend = await startBackend(t)
    const { ports } = await start(t, [...certLines, '[r]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`])
    const port = ports[0] as number
    const session = await new Promise<Buffer>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(fixture('ca.crt')), servername: 'localhost' })
      s.on('error', reject)
      s.once('session', (sess: Buffer) => {
        resolve(sess)
        s.end()
      })
      s.on('secureConnect', () => s.write('x'))
    })
    const again = await tlsRoundTrip(port, 'y', { session })
    assert.equal(again.reused, true)
    assert.equal(again.reply.toString(), 'y')
  })

  test('tickets survive a reload that keeps the service, not one that changes who may connect', async (t) => {
    const backend = await startBackend(t)
    const dir = await scratch(t)
    const lines = [...certLines, '[r]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`]
    const log = captureLogger()
    const terminator = createTlsTerminator((await loadStunnelConf(await writeConf(dir, lines))).model, log.logger, {
      ticketKeys: randomTicketKeys(),
    })
    const [address] = await terminator.listen()
    t.after(() => terminator.close({ drainTimeoutMs: 0 }))
    const port = (address as { port: number }).port
    const ca = readFileSync(fixture('ca.crt'))
    const session = await new Promise<Buffer>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...clientCert })
      s.on('error', reject)
      s.once('session', (sess: Buffer) => {
        resolve(sess)
        s.end()
      })
      s.on('secureConnect', () => s.write('x'))
      s.resume()
    })
    await terminator.reload((await loadStunnelConf(await writeConf(dir, lines, 'same.conf'))).model)
    assert.equal((await tlsRoundTrip(port, 'a', { session, ...clientCert })).reused, true)
    const stricter = [...lines, `CAfile = ${fixture('ca.crt')}`, 'verifyChain = yes']
    await terminator.reload((await loadStunnelConf(await writeConf(dir, stricter, 'stricter.conf'))).model)
    const after = await tlsRoundTrip(port, 'b', { session, ...clientCert })
    assert.equal(after.reused, false, 'a full handshake, so the client certificate is verified')
    assert.equal(after.reply.toString(), 'b')
  })

  test('reload: new certificate for new connections, an open one keeps going, a bad file keeps the old', async (t) => {
    const backend = await startBackend(t)
    const { terminator, ports, dir } = await start(t, [...certLines, '[x]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`])
    const port = ports[0] as number
    const ca = readFileSync(fixture('ca.crt'))
    const open = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' })
    await once(open, 'secureConnect')
    open.on('error', () => undefined)
    const nextFile = await writeConf(
      dir,
      [`cert = ${fixture('example.crt')}`, `key = ${fixture('example.key')}`, '[x]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`],
      'next.conf',
    )
    const next: TerminatorModel = (await loadStunnelConf(nextFile)).model
    await terminator.reload(next)
    const after = await tlsRoundTrip(port, 'n', { servername: 'www.example.com' })
    assert.equal(after.peerSubject, 'CN=www.example.com')
    open.write('still here')
    const [echo] = (await once(open, 'data')) as [Buffer]
    assert.equal(echo.toString(), 'still here')
    open.end()
    open.resume()
    const broken = await writeConf(dir, [`cert = ${fixture('localhost.crt')}`, `key = ${fixture('example.key')}`, '[x]', 'accept = 127.0.0.1:0', 'connect = 1'], 'broken.conf')
    await assert.rejects(terminator.reload((await loadStunnelConf(broken)).model), /does not match certificate/)
    const still = await tlsRoundTrip(port, 's', { servername: 'www.example.com' })
    assert.equal(still.reply.toString(), 's')
  })

  test('a bad cipher or curve is a start-up error at its line', async (t) => {
    const dir = await scratch(t)
    for (const [line, re] of [
      ['ciphers = NOT-A-CIPHER', /^FILE:6: ciphers: cannot build the TLS context: .*no cipher match/],
      ['curves = not-a-curve', /^FILE:6: curves: cannot build the TLS context: /],
    ] as const) {
      const file = await writeConf(dir, [...certLines, '[c]', 'accept = 127.0.0.1:0', 'connect = 1', line])
      const { model } = await loadStunnelConf(file)
      const term = createTlsTerminator(model, captureLogger().logger)
      await assert.rejects(term.listen(), (e: Error) => re.test(e.message.replaceAll(file, 'FILE')))
    }
  })

  test('certificates are described at start; a key that does not match is refused at its line', async (t) => {
    const backend = await startBackend(t)
    const { log } = await start(t, [...certLines, '[d]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`])
    await log.waitFor(/^info \[d\] certificate .*localhost\.crt: subject "CN=localhost", names DNS:localhost, IP Address:127\.0\.0\.1, .*expires \d{4}-/)
    const dir = await scratch(t)
    const file = await writeConf(dir, [`cert = ${fixture('localhost.crt')}`, `key = ${fixture('client.key')}`, '[d]', 'accept = 0', 'connect = 1'])
    const term = createTlsTerminator((await loadStunnelConf(file)).model, captureLogger().logger)
    await assert.rejects(term.listen(), {
      message: `${file}:2: key: key ${fixture('client.key')} does not match certificate ${fixture('localhost.crt')}`,
    })
  })

  test('a certificate close to expiry gets a warning', async (t) => {
    const backend = await startBackend(t)
    const dir = await scratch(t)
    const file = await writeConf(dir, [...certLines, '[e]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`])
    const { model } = await loadStunnelConf(file)
    const validTo = new Date(new (await import('node:crypto')).X509Certificate(readFileSync(fixture('localhost.crt'))).validTo)
    const log = captureLogger()
    const term = createTlsTerminator(model, log.logger, { now: new Date(validTo.getTime() - 10.5 * 86_400_000) })
    await term.listen()
    t.after(() => term.close({ drainTimeoutMs: 0 }))
    await log.waitFor(/^warn \[e\] certificate .*localhost\.crt expires in 10 days/)
  })

  test('64 MiB each way arrive byte-identical', async (t) => {
    const backend = await startBackend(t)
    const { ports } = await start(t, [...certLines, '[big]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`])
    const chunk = createHash('sha512').update('seed').digest()
    const block = Buffer.alloc(1024 * 1024)
    for (let i = 0; i < block.length; i += chunk.length) chunk.copy(block, i)
    const total = 64
    const sent = createHash('sha256')
    const got = createHash('sha256')
    let gotBytes = 0
    const s = tls.connect({ host: '127.0.0.1', port: ports[0] as number, ca: readFileSync(fixture('ca.crt')), servername: 'localhost' })
    await once(s, 'secureConnect')
    s.on('data', (c: Buffer) => {
      got.update(c)
      gotBytes += c.length
    })
    const closed = once(s, 'close')
    for (let i = 0; i < total; i++) {
      block.writeUInt32BE(i, 0)
      sent.update(block)
      if (!s.write(Buffer.from(block))) await once(s, 'drain')
    }
    s.end()
    await closed
    assert.equal(gotBytes, total * block.length)
    assert.equal(got.digest('hex'), sent.digest('hex'))
  })

  test('concurrent backends streaming different bytes, some clients stalled: each gets its own, intact', async (t) => {
    // Every backend read lands in one buffer shared by all connections (client-forwarder.ts).
    // The backends send small pieces, so reads are small; two clients stop reading until far
    // more than the kernel buffers hold is on its way, so the terminator's writes to them queue
    // up: a queued piece that were a view of the shared buffer would be overwritten by the next
    // read, of this connection or another, and the hashes would differ.
    const perConnection = 16 * 1024 * 1024
    const piece = 1024
    const pattern = (i: number) => {
      const block = Buffer.alloc(64 * 1024)
      for (let o = 0; o < block.length; o += 32) createHash('sha256').update(`${i}:${o}`).digest().copy(block, o)
      return block
    }
    const server = net.createServer((s) => {
      s.on('error', () => undefined)
      s.once('data', async (c: Buffer) => {
        const block = pattern(Number(c.toString()))
        for (let sent = 0; sent < perConnection && !s.destroyed; sent += piece) {
          const o = sent % block.length
          if (!s.write(block.subarray(o, o + piece))) await once(s, 'drain')
          else if (sent % (16 * piece) === 0) await new Promise((r) => setImmediate(r))
        }
        s.end()
      })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const port = (server.address() as net.AddressInfo).port
    const { ports } = await start(t, [...certLines, '[many]', 'accept = 127.0.0.1:0', `connect = ${port}`])
    const one = (i: number) =>
      new Promise<{ bytes: number; hash: string }>((resolve, reject) => {
        const hash = createHash('sha256')
        let bytes = 0
        const s = tls.connect({ host: '127.0.0.1', port: ports[0] as number, ca: CA, servername: 'localhost' })
        s.setTimeout(30_000, () => s.destroy(new Error(`client ${i} gave up after 30 s`)))
        s.on('error', reject)
        s.on('secureConnect', () => {
          s.write(String(i))
          // Odd clients stop reading for a while: the terminator's writes to them queue up.
          if (i % 2 === 1) {
            s.pause()
            setTimeout(() => s.resume(), 1500)
          }
        })
        s.on('data', (c: Buffer) => {
          hash.update(c)
          bytes += c.length
        })
        s.on('end', () => s.end())
        s.on('close', () => resolve({ bytes, hash: hash.digest('hex') }))
      })
    const ids = [0, 1, 2, 3]
    const results = await Promise.all(ids.map(one))
    for (const i of ids) {
      const expected = createHash('sha256')
      const block = pattern(i)
      for (let sent = 0; sent < perConnection; sent += block.length) expected.update(block)
      assert.equal(results[i]?.bytes, perConnection, `client ${i}: byte count`)
      assert.equal(results[i]?.hash, expected.digest('hex'), `client ${i}: content`)
    }
  })
})

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 25))
  assert.ok(check(), 'condition not reached in 5 s')
}
