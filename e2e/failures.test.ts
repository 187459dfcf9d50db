import assert from 'node:assert/strict'
import net from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { after, before, describe, test } from 'node:test'
import { devCertificatePaths } from '@edgestack/tls-terminator'
import { runCli, startDaemon, waitForOutput } from './processes.js'
import { CERT_DIR, type Stack, startStack } from './stack.js'

describe('bad input at start-up: one clear line, the right exit code, nothing half-started', () => {
  const certs = devCertificatePaths(CERT_DIR)

  for (const name of ['tls-terminator', 'caching-router', 'static-server', 'demo-app']) {
    test(`${name}: an unknown flag exits 2 with a usage hint`, async () => {
      const r = await runCli(name, ['--no-such-flag'])
      assert.equal(r.code, 2)
      assert.match(r.stderr, new RegExp(`^${name}: .*--no-such-flag`))
      assert.match(r.stderr, /--help/)
    })

    test(`${name}: --help prints usage and exits 0`, async () => {
      const r = await runCli(name, ['--help'])
      assert.equal(r.code, 0)
      assert.match(r.stdout, /^Usage: /)
    })
  }

  test('tls-terminator: a missing certificate exits 1 naming the file', async () => {
    const r = await runCli('tls-terminator', ['--accept', '127.0.0.1:0', '--connect', '1', '--cert', '/nonexistent.pem', '--key', certs.key])
    assert.equal(r.code, 1)
    assert.equal(r.stderr, 'tls-terminator: cannot read certificate /nonexistent.pem: ENOENT\n')
  })

  test('tls-terminator: a key that does not match the certificate exits 1', async () => {
    const r = await runCli('tls-terminator', ['--accept', '127.0.0.1:0', '--connect', '1', '--cert', certs.cert, '--key', certs.caKey])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^tls-terminator: key .*ca\.key does not match certificate .*server\.crt\n$/)
  })

  test('a port already in use exits 1 with one line', async (t) => {
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    t.after(() => blocker.close())
    const port = (blocker.address() as net.AddressInfo).port
    const cases: [string, string[]][] = [
      ['caching-router', ['-a', `127.0.0.1:${port}`]],
      ['static-server', ['--listen', `127.0.0.1:${port}`, '--root', '.']],
      ['demo-app', ['--listen', `127.0.0.1:${port}`]],
      ['tls-terminator', ['--accept', `127.0.0.1:${port}`, '--connect', '1', '--cert', certs.cert, '--key', certs.key]],
    ]
    for (const [name, args] of cases) {
      const r = await runCli(name, args)
      assert.equal(r.code, 1, `${name}: ${r.stderr}`)
      assert.match(r.stderr, new RegExp(`^${name}: .*EADDRINUSE`), name)
      assert.equal(r.stderr.trim().split('\n').length, 1, `${name} printed more than one line: ${r.stderr}`)
    }
  })

  test('a malformed address is a usage error', async () => {
    const r = await runCli('caching-router', ['-a', '127.0.0.1:99999'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /port 99999 is out of range/)
  })
})

describe('a backend that is down', () => {
  let stack: Stack
  before(async () => {
    stack = await startStack()
  })
  after(async () => {
    await stack?.stop()
  })

  test('the TLS backend down: the client is closed promptly and the close is logged', async (t) => {
    const closed = net.createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const deadPort = (closed.address() as net.AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const certs = devCertificatePaths(CERT_DIR)
    const tls = await startDaemon('tls-terminator', [
      '--accept',
      '127.0.0.1:0',
      '--connect',
      `127.0.0.1:${deadPort}`,
      '--cert',
      certs.cert,
      '--key',
      certs.key,
    ])
    t.after(() => tls.stop())
    const ended = await new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: tls.port, ca: stack.caCert, servername: 'localhost' })
      s.on('error', reject)
      s.on('close', () => resolve('closed'))
      s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
    })
    assert.equal(ended, 'closed')
    await waitForOutput(tls, /backend error: connect ECONNREFUSED/)
  })
})
