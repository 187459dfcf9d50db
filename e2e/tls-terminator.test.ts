import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import tls from 'node:tls'
import { freePort, startStunnel } from '@edgestack/tls-terminator/test/helpers'
import { REPO, runCli, startDaemon, waitForOutput } from './processes.js'

/**
 * tls-terminator started the way stunnel is (`tls-terminator FILE`), driven by real clients:
 * curl, openssl s_client and node:tls; and the real stunnel on the same file where installed.
 */

const FIX = `${REPO}packages/tls-terminator/test/fixtures/`
const CA_FILE = `${FIX}ca.crt`
const CERT = [`cert = ${FIX}localhost.crt`, `key = ${FIX}localhost.key`]

type T = { after(fn: () => Promise<void> | void): void }

async function tempDir(t: T): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tls-e2e-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function conf(dir: string, lines: string[], name = 'stunnel.conf'): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, `${lines.join('\n')}\n`)
  return file
}

/** Runs a real client program to completion (bounded to 15 s); never rejects. */
function run(cmd: string, args: string[], input = ''): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString()
    })
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString()
    })
    child.stdin.end(input)
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    child.on('error', (err) => {
      clearTimeout(timer)
      resolve({ code: -1, out: err.message })
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, out })
    })
  })
}

/** A plain HTTP backend saying who it is, as varnish would be behind stunnel. */
async function httpBackend(t: T, name: string): Promise<number> {
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'text/plain')
    res.end(`${name} ${req.method} ${req.url}\n`)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return (server.address() as net.AddressInfo).port
}

/** A TCP backend that records what each connection sent and echoes it. */
async function recordingBackend(t: T): Promise<{ port: number; received: Buffer[] }> {
  const received: Buffer[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s)
    const chunks: Buffer[] = []
    s.on('error', () => undefined)
    s.on('data', (c: Buffer) => {
      chunks.push(c)
      s.write(c)
    })
    s.on('end', () => {
      received.push(Buffer.concat(chunks))
      s.end()
    })
    s.on('close', () => sockets.delete(s))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port: (server.address() as net.AddressInfo).port, received }
}

const curl = (port: number, ...extra: string[]) =>
  run('curl', ['-sS', '--max-time', '10', '--cacert', CA_FILE, ...extra, `https://localhost:${port}/hello`])

describe('tls-terminator FILE, as stunnel FILE', () => {
  test('curl through a stunnel.conf; the close line names service, TLS, bytes and why', async (t) => {
    const dir = await tempDir(t)
    const backend = await httpBackend(t, 'varnish')
    const file = await conf(dir, [...CERT, 'foreground = yes', 'debug = 5', '[https]', 'accept = 127.0.0.1:0', `connect = ${backend}`, 'TIMEOUTclose = 0'])
    const d = await startDaemon('tls-terminator', [file])
    t.after(() => d.stop())
    const r = await curl(d.port)
    assert.equal(r.code, 0, r.out)
    assert.equal(r.out, 'varnish GET /hello\n')
    await waitForOutput(d, / closed: 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ TLSv1\.3 \S+ service=https sni=localhost in=\d+ out=\d+ ms=\d+ \w+ closed conn=1$/m)
  })

  test('openssl s_client: TLS 1.0 and 1.1 refused, 1.2 and 1.3 accepted; SNI picks the certificate', async (t) => {
    const dir = await tempDir(t)
    const backend = await httpBackend(t, 'b')
    const file = await conf(dir, [
      ...CERT,
      'foreground = yes',
      '[https]',
      'accept = 127.0.0.1:0',
      `connect = ${backend}`,
      '[example]',
      'sni = https:*.example.org',
      `connect = ${backend}`,
      `cert = ${FIX}example.crt`,
      `key = ${FIX}example.key`,
    ])
    const d = await startDaemon('tls-terminator', [file])
    t.after(() => d.stop())
    const sClient = (...args: string[]) =>
      run('openssl', ['s_client', '-connect', `127.0.0.1:${d.port}`, '-CAfile', CA_FILE, '-brief', ...args])
    // The client has to lower its own floor to even try the old versions.
    for (const old of ['-tls1', '-tls1_1']) {
      const r = await sClient(old, '-cipher', 'DEFAULT@SECLEVEL=0', '-servername', 'localhost')
      assert.notEqual(r.code, 0, `${old} was accepted:\n${r.out}`)
      assert.match(r.out, /alert protocol version|unsupported protocol|no protocols available/i, r.out)
    }
    const v12 = await sClient('-tls1_2', '-servername', 'localhost')
    assert.equal(v12.code, 0, v12.out)
    assert.match(v12.out, /Protocol version: TLSv1\.2/)
    assert.match(v12.out, /Peer certificate: CN ?= ?localhost/)
    const sni = await sClient('-tls1_3', '-servername', 'app.example.org')
    assert.equal(sni.code, 0, sni.out)
    assert.match(sni.out, /Peer certificate: CN ?= ?www\.example\.com/)
  })

  test('client certificates with curl: required and verified when configured', async (t) => {
    const dir = await tempDir(t)
    const backend = await httpBackend(t, 'secret')
    const file = await conf(dir, [
      ...CERT,
      'foreground = yes',
      '[mtls]',
      'accept = 127.0.0.1:0',
      `connect = ${backend}`,
      `CAfile = ${CA_FILE}`,
      'verifyChain = yes',
    ])
    const d = await startDaemon('tls-terminator', [file])
    t.after(() => d.stop())
    const without = await curl(d.port)
    assert.notEqual(without.code, 0, without.out)
    const stranger = await curl(d.port, '--cert', `${FIX}stranger.crt`, '--key', `${FIX}stranger.key`)
    assert.notEqual(stranger.code, 0, stranger.out)
    const alice = await curl(d.port, '--cert', `${FIX}client.crt`, '--key', `${FIX}client.key`)
    assert.equal(alice.code, 0, alice.out)
    assert.equal(alice.out, 'secret GET /hello\n')
  })

  test('SIGHUP: a broken config is logged and the old one keeps serving; a good one applies to new connections', async (t) => {
    const dir = await tempDir(t)
    const backend = await recordingBackend(t)
    const lines = [...CERT, 'foreground = yes', '[x]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`]
    const file = await conf(dir, lines)
    const d = await startDaemon('tls-terminator', [file])
    t.after(() => d.stop())
    // An open connection that must survive both reloads.
    const open = tls.connect({ host: '127.0.0.1', port: d.port, ca: await readFile(CA_FILE), servername: 'localhost' })
    open.on('error', () => undefined)
    await once(open, 'secureConnect')

    await conf(dir, [...CERT, 'foreground = yes', '[x]', 'accept = 127.0.0.1:0', 'connect = 1', 'TIMEOUTidle = soon'])
    d.child.kill('SIGHUP')
    await waitForOutput(d, /reload failed, keeping the running configuration: .*stunnel\.conf:7: TIMEOUTidle: "soon" is not a whole number of seconds/)
    assert.equal((await echoOnce(d.port, 'old config')).echo, 'old config')

    await conf(dir, [`cert = ${FIX}example.crt`, `key = ${FIX}example.key`, 'foreground = yes', '[x]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`])
    d.child.kill('SIGHUP')
    await waitForOutput(d, /info tls-terminator: reloaded/)
    const s = await run('openssl', ['s_client', '-connect', `127.0.0.1:${d.port}`, '-CAfile', CA_FILE, '-brief', '-servername', 'www.example.com'])
    assert.match(s.out, /Peer certificate: CN ?= ?www\.example\.com/)

    open.write('after two reloads')
    const [echo] = (await once(open, 'data')) as [Buffer]
    assert.equal(echo.toString(), 'after two reloads')
    open.end()
    open.resume()
    await once(open, 'close')
  })

  test('SIGTERM: stops accepting, lets an open connection finish, then exits 0 and removes its pid file', async (t) => {
    const dir = await tempDir(t)
    const backend = await recordingBackend(t)
    const pid = join(dir, 'tls.pid')
    const file = await conf(dir, [...CERT, 'foreground = yes', `pid = ${pid}`, '[x]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`])
    const d = await startDaemon('tls-terminator', [file])
    t.after(() => d.stop())
    await waitFor(() => d.output().includes('listening on'))
    let pidText = ''
    for (let i = 0; i < 200 && !pidText; i++) {
      pidText = await readFile(pid, 'utf8').catch(() => '')
      if (!pidText) await new Promise((r) => setTimeout(r, 25))
    }
    assert.equal(pidText.trim(), String(d.child.pid))
    const open = tls.connect({ host: '127.0.0.1', port: d.port, ca: await readFile(CA_FILE), servername: 'localhost' })
    open.on('error', () => undefined)
    await once(open, 'secureConnect')
    const exited = once(d.child, 'exit')
    d.child.kill('SIGTERM')
    await waitForOutput(d, /SIGTERM: draining/)
    // The listener is closed: a new client is refused at TCP level.
    const refused = await new Promise<string>((resolve) => {
      const c = net.connect(d.port, '127.0.0.1')
      c.on('connect', () => {
        c.destroy()
        resolve('connected')
      })
      c.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
    })
    assert.equal(refused, 'ECONNREFUSED')
    open.write('last words')
    const [echo] = (await once(open, 'data')) as [Buffer]
    assert.equal(echo.toString(), 'last words')
    open.end()
    open.resume()
    const [code] = (await exited) as [number | null]
    assert.equal(code, 0)
    await assert.rejects(access(pid), { code: 'ENOENT' })
  })

  test('bad config lines: one message with file:line, exit 1, nothing bound', async (t) => {
    const dir = await tempDir(t)
    const cases: [string[], string][] = [
      [[...CERT, '[x]', 'accept = 127.0.0.1:0', 'connect = 1', 'frobnicate = yes'], ':6: option "frobnicate" is not supported'],
      [[...CERT, '[x]', 'accept = 127.0.0.1:0', 'connect = 1', 'sslVersionMax = TLSv1.1'], ':6: sslVersionMax: "TLSv1.1" would leave no version'],
      [[`cert = ${FIX}localhost.crt`, `key = ${FIX}client.key`, '[x]', 'accept = 127.0.0.1:0', 'connect = 1'], ':2: key: key '],
      [[...CERT, '[x]', 'accept = 127.0.0.1:0', 'connect = 1', 'ciphers = NOPE'], ':6: ciphers: cannot build the TLS context'],
    ]
    for (const [lines, expected] of cases) {
      const file = await conf(dir, lines)
      const r = await runCli('tls-terminator', [file])
      assert.equal(r.code, 1, r.stderr)
      assert.ok(r.stderr.startsWith(`tls-terminator: ${file}${expected}`), r.stderr)
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
      assert.doesNotMatch(r.stdout, /listening on/)
    }
    const missing = await runCli('tls-terminator', [join(dir, 'nope.conf')])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /^tls-terminator: cannot read configuration file .*nope\.conf: ENOENT\n$/)
    const ok = await runCli('tls-terminator', ['-t', await conf(dir, [...CERT, '[x]', 'accept = 0', 'connect = 1'])])
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /configuration OK/)
  })

  test('--workers 2: both workers serve the same port, SIGHUP reloads each, SIGTERM stops them all', async (t) => {
    const dir = await tempDir(t)
    const backend = await httpBackend(t, 'w')
    const file = await conf(dir, [...CERT, 'foreground = yes', '[x]', 'accept = 127.0.0.1:0', `connect = ${backend}`])
    const d = await startDaemon('tls-terminator', ['--workers', '2', file])
    t.after(() => d.stop())
    await waitForOutput(d, /tls-terminator\[2\]: listening on/)
    for (let i = 0; i < 4; i++) {
      const r = await curl(d.port)
      assert.equal(r.out, 'w GET /hello\n')
    }
    // SIGHUP to the primary reloads every worker.
    await conf(dir, [`cert = ${FIX}example.crt`, `key = ${FIX}example.key`, 'foreground = yes', '[x]', 'accept = 127.0.0.1:0', `connect = ${backend}`])
    d.child.kill('SIGHUP')
    await waitForOutput(d, /tls-terminator\[1\]: reloaded/)
    await waitForOutput(d, /tls-terminator\[2\]: reloaded/)
    for (let i = 0; i < 4; i++) {
      const s = await run('openssl', ['s_client', '-connect', `127.0.0.1:${d.port}`, '-CAfile', CA_FILE, '-brief', '-servername', 'www.example.com'])
      assert.match(s.out, /Peer certificate: CN ?= ?www\.example\.com/)
    }
    const exited = once(d.child, 'exit')
    d.child.kill('SIGTERM')
    const [code] = (await exited) as [number | null]
    assert.equal(code, 0)
  })
})

describe('--workers when a port is taken', () => {
  test('the workers fail to listen and the whole process exits 1 instead of forking in a loop', async (t) => {
    const blocker = net.createServer()
    blocker.listen(0, '127.0.0.1')
    await once(blocker, 'listening')
    t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())))
    const port = (blocker.address() as net.AddressInfo).port
    const r = await runCli('tls-terminator', ['--workers', '2', '--accept', `127.0.0.1:${port}`, '--connect', '1', '--cert', `${FIX}localhost.crt`, '--key', `${FIX}localhost.key`])
    assert.equal(r.code, 1, r.stdout + r.stderr)
    assert.match(r.stderr, /EADDRINUSE/)
    // Each worker said why on the shared stderr; none was started again.
    assert.doesNotMatch(r.stdout, /starting another/)
  })
})

describe('global options: output, debug, setuid/setgid', () => {
  test('output = FILE gets the log; debug = 4 (warning) leaves connection lines out', async (t) => {
    const dir = await tempDir(t)
    const backend = await recordingBackend(t)
    const port = await freePort()
    const log = join(dir, 'tls.log')
    const file = await conf(dir, [...CERT, 'foreground = yes', `output = ${log}`, 'debug = 4', '[x]', `accept = 127.0.0.1:${port}`, `connect = ${backend.port}`, '[y]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`, 'debug = info'])
    const child = spawn(process.execPath, [`${REPO}packages/tls-terminator/dist/src/cli.js`, file], { stdio: 'ignore' })
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL')
    })
    let text = ''
    for (let i = 0; i < 200 && !text.includes('listening on 127.0.0.1:'); i++) {
      text = await readFile(log, 'utf8').catch(() => '')
      await new Promise((r) => setTimeout(r, 25))
    }
    assert.match(text, new RegExp(`listening on 127\\.0\\.0\\.1:${port}: service x`))
    assert.equal((await echoOnce(port, 'quiet')).echo, 'quiet')
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    await exited
    text = await readFile(log, 'utf8')
    assert.match(text, /stopped/)
    assert.doesNotMatch(text, /service=x /, 'a debug = 4 service logs no connection lines')
  })

  test('setuid/setgid drop root after binding (only when run as root)', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('not running as root')
      return
    }
    const dir = await tempDir(t)
    const backend = await recordingBackend(t)
    const file = await conf(dir, [...CERT, 'foreground = yes', 'setuid = nobody', 'setgid = nogroup', '[x]', 'accept = 127.0.0.1:0', `connect = ${backend.port}`])
    const d = await startDaemon('tls-terminator', [file])
    t.after(() => d.stop())
    await waitForOutput(d, /running as nobody:nogroup/)
    const status = await readFile(`/proc/${d.child.pid}/status`, 'utf8')
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1]
    assert.notEqual(uid, '0')
    assert.equal((await echoOnce(d.port, 'unprivileged')).echo, 'unprivileged')
  })
})

describe('the real stunnel and tls-terminator on the same stunnel.conf', () => {
  const STUNNEL = '/usr/bin/stunnel'

  test('both accept it and behave the same: PROXY v1 line, echo, TLS 1.1 refused, SNI, client certificates', async (t) => {
    try {
      await access(STUNNEL)
    } catch {
      t.skip('stunnel is not installed (Debian: apt-get install stunnel4)')
      return
    }
    const dir = await tempDir(t)
    const results: Record<string, { proxy: string; echo: string; old: number | null; sni: string; mtls: string[] }> = {}
    const withCert = async (name: string) => ({
      cert: await readFile(`${FIX}${name}.crt`),
      key: await readFile(`${FIX}${name}.key`),
    })
    for (const program of ['stunnel', 'tls-terminator']) {
      const backend = await recordingBackend(t)
      const port = await freePort()
      const mtlsPort = await freePort()
      const file = await conf(dir, [
        ...CERT,
        'foreground = yes',
        'pid =',
        'debug = 5',
        '[https]',
        `accept = 127.0.0.1:${port}`,
        `connect = 127.0.0.1:${backend.port}`,
        'protocol = proxy',
        'sslVersionMin = TLSv1.2',
        'TIMEOUTclose = 0',
        '[example]',
        'sni = https:www.example.com',
        `connect = 127.0.0.1:${backend.port}`,
        `cert = ${FIX}example.crt`,
        `key = ${FIX}example.key`,
        '[mtls]',
        `accept = 127.0.0.1:${mtlsPort}`,
        `connect = 127.0.0.1:${backend.port}`,
        `CAfile = ${CA_FILE}`,
        'verifyChain = yes',
      ], `${program}.conf`)
      const stop = program === 'stunnel' ? (await startStunnel(t, file, port)).stop : await startOurs(t, file)
      const echo = await echoOnce(port, 'hello over TLS')
      const old = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0', '-brief'])
      const sni = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', CA_FILE, '-brief', '-servername', 'www.example.com'])
      const mtls = [
        (await echoOnce(mtlsPort, 'no cert')).echo,
        (await echoOnce(mtlsPort, 'stranger', 'localhost', await withCert('stranger'))).echo,
        (await echoOnce(mtlsPort, 'alice', 'localhost', await withCert('client'))).echo,
      ]
      await waitFor(() => backend.received.length >= 1)
      const first = (backend.received[0] as Buffer).toString()
      results[program] = {
        proxy: first.replace(`127.0.0.1 127.0.0.1 ${echo.local} ${port}`, '127.0.0.1 127.0.0.1 CPORT SPORT'),
        echo: echo.echo.replace(`127.0.0.1 127.0.0.1 ${echo.local} ${port}`, '127.0.0.1 127.0.0.1 CPORT SPORT'),
        old: old.code === 0 ? 0 : 1,
        sni: /Peer certificate: (.*)/.exec(sni.out)?.[1]?.replaceAll(' ', '') ?? sni.out,
        mtls,
      }
      await stop()
    }
    assert.deepEqual(results['tls-terminator'], results.stunnel)
    assert.deepEqual(results.stunnel, {
      proxy: 'PROXY TCP4 127.0.0.1 127.0.0.1 CPORT SPORT\r\nhello over TLS',
      echo: 'PROXY TCP4 127.0.0.1 127.0.0.1 CPORT SPORT\r\nhello over TLS',
      old: 1,
      sni: 'CN=www.example.com',
      mtls: ['', '', 'alice'],
    })
  })
})

/**
 * node:tls: sends `text`, waits for it to come back from the echo backend, then closes. No
 * half-close here: with protocol = proxy and an immediate close_notify, stunnel was seen
 * returning nothing, and this test compares the two programs, not their half-close.
 */
async function echoOnce(
  port: number,
  text: string,
  servername = 'localhost',
  extra: tls.ConnectionOptions = {},
): Promise<{ echo: string; local: number }> {
  const ca = await readFile(CA_FILE)
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, ca, ...extra })
    const chunks: Buffer[] = []
    let local = 0
    s.on('secureConnect', () => {
      local = s.localPort ?? 0
      s.write(text)
    })
    s.on('data', (c: Buffer) => {
      chunks.push(c)
      if (Buffer.concat(chunks).toString().endsWith(text)) s.end()
    })
    s.on('error', () => undefined)
    s.on('close', () => resolve({ echo: Buffer.concat(chunks).toString(), local }))
    s.setTimeout(10_000, () => s.destroy())
  })
}

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 25))
  assert.ok(check(), 'condition not reached in 5 s')
}

async function startOurs(t: T, file: string): Promise<() => Promise<void>> {
  const d = await startDaemon('tls-terminator', [file])
  t.after(() => d.stop())
  return () => d.stop()
}
