import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import tls from 'node:tls'
import { type Daemon, REPO, startDaemon, waitForOutput } from './processes.js'

/**
 * tls-terminator (`tls-terminator FILE`, one process) against hostile clients and backends.
 * One daemon serves every test, so it must survive all of them: after each one, a good client
 * still gets its bytes echoed and the process has not exited.
 */

const FIX = `${REPO}packages/tls-terminator/test/fixtures/`
const CA = await readFile(`${FIX}ca.crt`)
const MAX_CONNECTIONS = 40

interface Backends {
  echo: number
  /** Writes up to FIREHOSE_BYTES to each connection, honouring backpressure. */
  firehose: number
  firehoseWritten: () => number
  /** Resets the connection as soon as it reads anything. */
  reset: number
  /** Accepts and never reads. */
  stall: number
  close(): void
}

const FIREHOSE_BYTES = 1024 * 1024 * 1024

async function startBackends(): Promise<Backends> {
  const sockets = new Set<net.Socket>()
  const track = (s: net.Socket) => {
    sockets.add(s)
    s.on('error', () => undefined)
    s.on('close', () => sockets.delete(s))
  }
  const echo = net.createServer({ allowHalfOpen: true }, (s) => {
    track(s)
    s.pipe(s)
  })
  let written = 0
  const firehose = net.createServer((s) => {
    track(s)
    const chunk = Buffer.alloc(1024 * 1024, 0x66)
    let sent = 0
    const pump = () => {
      while (sent < FIREHOSE_BYTES && !s.destroyed) {
        sent += chunk.length
        written += chunk.length
        if (!s.write(chunk)) return void s.once('drain', pump)
      }
      s.end()
    }
    s.once('data', pump)
  })
  const reset = net.createServer((s) => {
    track(s)
    s.once('data', () => s.resetAndDestroy())
  })
  const stall = net.createServer((s) => {
    track(s)
    s.pause()
  })
  const servers = [echo, firehose, reset, stall]
  for (const server of servers) {
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
  }
  const port = (s: net.Server) => (s.address() as net.AddressInfo).port
  return {
    echo: port(echo),
    firehose: port(firehose),
    firehoseWritten: () => written,
    reset: port(reset),
    stall: port(stall),
    close() {
      for (const s of sockets) s.destroy()
      for (const s of servers) s.close()
    },
  }
}

/** A well-behaved client: handshake with SNI, send a line, read it back through the echo backend. */
function goodClient(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: CA })
    let got = ''
    const timer = setTimeout(() => s.destroy(), 10_000)
    s.setEncoding('utf8')
    s.on('secureConnect', () => s.write('hello\n'))
    s.on('data', (c: string) => {
      got += c
      if (got.includes('\n')) s.end()
    })
    s.on('error', (err) => {
      got += `error: ${err.message}`
    })
    s.on('close', () => {
      clearTimeout(timer)
      resolve(got)
    })
  })
}

/** Raw bytes to a TLS port; resolves with what came back and whether the daemon closed (10 s bound). */
function raw(port: number, parts: Buffer[], opts: { gapMs?: number } = {}): Promise<{ reply: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.setNoDelay(true)
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      s.destroy()
      resolve({ reply: Buffer.concat(chunks), closed: false })
    }, 10_000)
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('error', () => undefined)
    s.on('close', () => {
      clearTimeout(timer)
      resolve({ reply: Buffer.concat(chunks), closed: true })
    })
    s.on('connect', async () => {
      for (const p of parts) {
        if (s.destroyed) return
        s.write(p)
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs))
      }
    })
  })
}

/** A real ClientHello from node:tls for `localhost`, captured by a plain TCP listener. */
async function captureClientHello(servername: string): Promise<Buffer> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', servername })
  client.on('error', () => undefined)
  const [socket] = (await once(server, 'connection')) as [net.Socket]
  let hello = Buffer.alloc(0)
  while (hello.length < 5 || hello.length < 5 + hello.readUInt16BE(3)) {
    const [c] = (await once(socket, 'data')) as [Buffer]
    hello = Buffer.concat([hello, c])
  }
  client.destroy()
  socket.destroy()
  server.close()
  return hello
}

/** The daemon's resident set size in KiB, from /proc. */
async function rssKiB(d: Daemon): Promise<number> {
  const status = await readFile(`/proc/${d.child.pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1])
}

/** Seeded bytes, so a failure is reproducible. */
function seededBytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n)
  let x = seed >>> 0
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

describe('tls-terminator against hostile clients and backends', () => {
  let d: Daemon
  let dir: string
  let backends: Backends
  const ports: Record<string, number> = {}

  before(async () => {
    backends = await startBackends()
    dir = await mkdtemp(join(tmpdir(), 'hostile-tls-'))
    const file = join(dir, 'stunnel.conf')
    const service = (name: string, port: number) => [`[${name}]`, 'accept = 127.0.0.1:0', `connect = 127.0.0.1:${port}`]
    await writeFile(
      file,
      [
        `cert = ${FIX}localhost.crt`,
        `key = ${FIX}localhost.key`,
        'foreground = yes',
        'debug = 5',
        'TIMEOUTbusy = 2',
        'TIMEOUTclose = 0',
        ...service('echo', backends.echo),
        ...service('firehose', backends.firehose),
        ...service('reset', backends.reset),
        ...service('stall', backends.stall),
        // Handshakes here are never ended by the timeout within a test's bounds.
        ...service('patient', backends.echo),
        'TIMEOUTbusy = 300',
        '',
      ].join('\n'),
    )
    d = await startDaemon('tls-terminator', ['--max-connections', String(MAX_CONNECTIONS), file])
    await waitForOutput(d, /service patient/)
    for (const m of d.output().matchAll(/listening on 127\.0\.0\.1:(\d+): service (\w+)/g)) ports[m[2] as string] = Number(m[1])
  })

  after(async () => {
    await d?.stop()
    backends?.close()
    await rm(dir, { recursive: true, force: true })
  })

  /** After every test: the daemon runs and serves a good client. */
  async function assertStillServing(): Promise<void> {
    assert.equal(d.child.exitCode, null, `the daemon exited:\n${d.output()}`)
    assert.equal(d.child.signalCode, null)
    assert.equal(await goodClient(ports.echo as number), 'hello\n')
  }

  /** Retries a good client (bounded: 10 s) until the listener has room again; its last answer. */
  async function untilServing(): Promise<string> {
    let got = ''
    for (let i = 0; i < 100 && got !== 'hello\n'; i++) {
      got = await goodClient(ports.echo as number)
      if (got !== 'hello\n') await new Promise((r) => setTimeout(r, 100))
    }
    return got
  }

  test('a good client is echoed (the baseline every test below comes back to)', async () => {
    await assertStillServing()
  })

  test('plain HTTP bytes on the TLS port: closed, no HTTP answer', async () => {
    const r = await raw(ports.echo as number, [Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')])
    assert.equal(r.closed, true)
    assert.doesNotMatch(r.reply.toString('latin1'), /HTTP\/1/)
    await assertStillServing()
  })

  test('random bytes, and a handshake record full of random bytes: closed', async () => {
    for (let seed = 1; seed <= 10; seed++) {
      const junk = seededBytes(600, seed)
      assert.equal((await raw(ports.echo as number, [junk])).closed, true, `seed ${seed}`)
      const record = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), junk.subarray(0, 506)])
      assert.equal((await raw(ports.echo as number, [record])).closed, true, `record seed ${seed}`)
    }
    await assertStillServing()
  })

  test('a ClientHello split byte by byte still gets a ServerHello', async () => {
    const hello = await captureClientHello('localhost')
    const bytes = [...hello].map((b) => Buffer.from([b]))
    const s = net.connect(ports.echo as number, '127.0.0.1')
    s.setNoDelay(true)
    s.on('error', () => undefined)
    await once(s, 'connect')
    for (const b of bytes) {
      s.write(b)
      await new Promise((r) => setImmediate(r))
    }
    const [reply] = (await Promise.race([once(s, 'data'), once(s, 'close')])) as [Buffer | boolean]
    s.destroy()
    assert.ok(Buffer.isBuffer(reply), 'the daemon answered')
    assert.equal(reply[0], 0x16, 'a handshake record (ServerHello)')
    await assertStillServing()
  })

  test('a client that connects and sends nothing is closed by TIMEOUTbusy', async () => {
    const r = await raw(ports.echo as number, [])
    assert.equal(r.closed, true, 'closed within our 10 s bound (TIMEOUTbusy = 2)')
    await assertStillServing()
  })

  test('a ClientHello cut in half is closed by TIMEOUTbusy', async () => {
    const hello = await captureClientHello('localhost')
    const r = await raw(ports.echo as number, [hello.subarray(0, 100)])
    assert.equal(r.closed, true)
    await assertStillServing()
  })

  test('half-open handshakes up to the connection limit: the limit is logged, then a good client connects again', async () => {
    const hello = await captureClientHello('localhost')
    const held: net.Socket[] = []
    try {
      for (let i = 0; i < MAX_CONNECTIONS + 5; i++) {
        const s = net.connect(ports.echo as number, '127.0.0.1')
        s.on('error', () => undefined)
        await once(s, 'connect')
        s.write(hello.subarray(0, 50))
        held.push(s)
      }
      await waitForOutput(d, new RegExp(`connection limit ${MAX_CONNECTIONS} reached`))
      const refused = await goodClient(ports.echo as number)
      assert.notEqual(refused, 'hello\n', 'over the limit, a new connection is dropped')
    } finally {
      for (const s of held) s.destroy()
    }
    // The slots come back at the latest when TIMEOUTbusy (2 s) ends those handshakes.
    assert.equal(await untilServing(), 'hello\n')
    await assertStillServing()
  })

  test('a client FIN in the middle of its handshake frees its connection slot, not TIMEOUTbusy', async () => {
    // The `patient` service has TIMEOUTbusy = 300: within this test's 10 s bound only the
    // clients' FINs can give the slots back (stunnel's SSL_accept also ends on EOF).
    const port = ports.patient as number
    const hello = await captureClientHello('localhost')
    const held: net.Socket[] = []
    try {
      for (let i = 0; i < MAX_CONNECTIONS; i++) {
        const s = net.connect(port, '127.0.0.1')
        s.on('error', () => undefined)
        await once(s, 'connect')
        s.write(hello.subarray(0, 50))
        held.push(s)
      }
      assert.notEqual(await goodClient(port), 'hello\n', 'the listener is full')
      await waitForOutput(d, /\[patient\] connection limit \d+ reached/)
      // Each client half-closes: its handshake can never complete.
      await Promise.all(held.map((s) => new Promise<void>((r) => s.end(r))))
      let got = ''
      for (let i = 0; i < 100 && got !== 'hello\n'; i++) {
        got = await goodClient(port)
        if (got !== 'hello\n') await new Promise((r) => setTimeout(r, 100))
      }
      assert.equal(got, 'hello\n')
    } finally {
      for (const s of held) s.destroy()
    }
  })

  test('SNI with garbage, overlong and unicode names: each handshake ends cleanly one way or the other', async () => {
    for (const servername of ['x'.repeat(255), 'a..b', '-.-', 'bad_name!$%', '\u00e9t\u00e9.example', `${'a'.repeat(64)}.example`, '1.2.3.4']) {
      const outcome = await new Promise<string>((resolve) => {
        const s = tls.connect({ port: ports.echo as number, host: '127.0.0.1', servername, rejectUnauthorized: false })
        const timer = setTimeout(() => s.destroy(), 10_000)
        let echoed = ''
        s.setEncoding('latin1')
        s.on('data', (c: string) => {
          echoed += c
        })
        s.on('secureConnect', () => s.end('x'))
        s.on('error', (err) => {
          clearTimeout(timer)
          resolve(`error ${err.message}`)
        })
        s.on('close', () => {
          clearTimeout(timer)
          resolve(`closed ${echoed}`)
        })
      })
      // Either the default certificate answers and the bytes go through, or the handshake
      // is refused; never a hang (the 10 s bound would show as neither).
      assert.match(outcome, /^(closed x|error )/, servername)
    }
    await assertStillServing()
  })

  test('a ClientHello whose SNI lengths lie is refused', async () => {
    const hello = await captureClientHello('localhost')
    const at = hello.indexOf('localhost')
    assert.ok(at > 9)
    for (const [offset, value] of [
      [-2, 0xffff], // name length
      [-5, 0xffff], // server name list length
      [-7, 0x0001], // extension length
      [-2, 0x0000],
    ] as const) {
      const bad = Buffer.from(hello)
      bad.writeUInt16BE(value, at + offset)
      const r = await raw(ports.echo as number, [bad])
      assert.equal(r.closed, true, `offset ${offset}`)
      assert.notEqual(r.reply[0], 0x17, 'no application data')
    }
    await assertStillServing()
  })

  test('a client that stops reading while the backend sends a lot: the daemon stays small (backpressure)', async () => {
    const before = await rssKiB(d)
    const s = tls.connect({ port: ports.firehose as number, host: '127.0.0.1', servername: 'localhost', ca: CA })
    s.on('error', () => undefined)
    await once(s, 'secureConnect')
    s.write('go')
    s.pause()
    let max = before
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 200))
      max = Math.max(max, await rssKiB(d))
    }
    const written = backends.firehoseWritten()
    s.destroy()
    assert.ok(written > 0, 'the backend started sending')
    assert.ok(written < FIREHOSE_BYTES, `the backend was held back (wrote ${written} bytes)`)
    assert.ok(max - before < 200 * 1024, `RSS grew by ${max - before} KiB`)
    await assertStillServing()
  })

  test('a backend that never reads while the client sends a lot: the daemon stays small (backpressure)', async () => {
    const before = await rssKiB(d)
    const s = tls.connect({ port: ports.stall as number, host: '127.0.0.1', servername: 'localhost', ca: CA })
    s.on('error', () => undefined)
    await once(s, 'secureConnect')
    const chunk = Buffer.alloc(1024 * 1024, 0x73)
    let accepted = 0
    let max = before
    // Write while the daemon takes bytes; at most 40 rounds of 200 ms, at most 1 GiB.
    for (let i = 0; i < 40 && accepted < FIREHOSE_BYTES; i++) {
      while (accepted < FIREHOSE_BYTES && s.write(chunk)) accepted += chunk.length
      await Promise.race([once(s, 'drain'), new Promise((r) => setTimeout(r, 200))])
      max = Math.max(max, await rssKiB(d))
    }
    s.destroy()
    assert.ok(accepted < FIREHOSE_BYTES, `the client was held back (${accepted} bytes taken)`)
    assert.ok(max - before < 200 * 1024, `RSS grew by ${max - before} KiB`)
    await assertStillServing()
  })

  test('TLS 1.2 client-initiated renegotiation, over and over: refused or cut, never a crash', async () => {
    const out = await new Promise<string>((resolve) => {
      const child = spawn(
        'openssl',
        ['s_client', '-connect', `127.0.0.1:${ports.echo}`, '-tls1_2', '-servername', 'localhost', '-CAfile', `${FIX}ca.crt`],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      )
      let text = ''
      child.stdout.on('data', (c: Buffer) => {
        text += c.toString()
      })
      child.stderr.on('data', (c: Buffer) => {
        text += c.toString()
      })
      // s_client renegotiates on a line reading "R"; keep asking, bounded.
      let n = 0
      const timer = setInterval(() => {
        if (n++ < 20 && child.stdin.writable) child.stdin.write('R\n')
        else child.stdin.end()
      }, 50)
      const kill = setTimeout(() => child.kill('SIGKILL'), 15_000)
      child.on('error', (err) => {
        text += err.message
      })
      child.on('close', () => {
        clearInterval(timer)
        clearTimeout(kill)
        resolve(text)
      })
    })
    assert.match(out, /CONNECTED/, out)
    await assertStillServing()
  })

  test(
    'a handshake that ends after the client left is logged with the client address',
    async (t) => {
      const dir = await mkdtemp(join(tmpdir(), 'hostile-tls-log-'))
      t.after(() => rm(dir, { recursive: true, force: true }))
      const file = join(dir, 'stunnel.conf')
      const lines = [`cert = ${FIX}localhost.crt`, `key = ${FIX}localhost.key`, 'foreground = yes', 'debug = 7', 'TIMEOUTbusy = 1']
      await writeFile(file, [...lines, '[s]', 'accept = 127.0.0.1:0', `connect = 127.0.0.1:${backends.echo}`, ''].join('\n'))
      const log = await startDaemon('tls-terminator', [file])
      t.after(() => log.stop())
      const s = net.connect(log.port, '127.0.0.1')
      s.on('error', () => undefined)
      await once(s, 'connect')
      s.end((await captureClientHello('localhost')).subarray(0, 50))
      await waitForOutput(log, /TLS handshake failed from/)
      s.destroy()
      assert.match(log.output(), /TLS handshake failed from 127\.0\.0\.1/)
    },
  )

  test('abrupt resets: a client resetting mid-stream, a backend resetting mid-stream', async () => {
    for (let i = 0; i < 10; i++) {
      const tcp = net.connect(ports.firehose as number, '127.0.0.1')
      tcp.on('error', () => undefined)
      await once(tcp, 'connect')
      const s = tls.connect({ socket: tcp, servername: 'localhost', ca: CA })
      s.on('error', () => undefined)
      await once(s, 'secureConnect')
      s.write('go')
      await once(s, 'data')
      tcp.resetAndDestroy()
    }
    for (let i = 0; i < 10; i++) {
      const s = tls.connect({ port: ports.reset as number, host: '127.0.0.1', servername: 'localhost', ca: CA })
      s.on('error', () => undefined)
      await once(s, 'secureConnect')
      s.write('boom')
      const closed = await Promise.race([
        once(s, 'close').then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 10_000)),
      ])
      s.destroy()
      assert.equal(closed, true, 'the client is closed when its backend resets')
    }
    for (let i = 0; i < 10; i++) {
      const tcp = net.connect(ports.echo as number, '127.0.0.1')
      tcp.on('error', () => undefined)
      await once(tcp, 'connect')
      tcp.write((await captureClientHello('localhost')).subarray(0, 200), () => tcp.resetAndDestroy())
      await once(tcp, 'close')
    }
    await assertStillServing()
  })
})
