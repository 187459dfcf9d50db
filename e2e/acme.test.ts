import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import tls from 'node:tls'
import { haveStunnel, startStunnel } from '@edgestack/tls-terminator/test/helpers'
import { echoBackend, metric, served, tempDir, until } from './acme-helpers.js'
import { get } from './daemon-fixtures.js'
import { PEBBLE_TRUST, pebbleMissing, startPebble } from './pebble.js'
import { freePort } from './ports.js'
import { cliOf, type Daemon, runCli, startDaemon, startProcess, waitForOutput } from './processes.js'

// issue 20, ACME: `tls-terminator acme` against Debian's pebble on loopback, every challenge
// validated for real (pebble's VA fetches HTTP-01 from static-server's root or our responder,
// and checks TLS-ALPN-01 on ours): first issuance, renewal picked up by a running terminator
// (an open connection kept) and by the real stunnel after its SIGHUP, and a CA that is down
// (retries with backoff, the certificate on disk untouched, the failure in logs and metrics).

const missing = pebbleMissing()
if (missing && process.env.CI) throw new Error(`${missing}: the ACME tests cannot run`)
const skip = missing ? `${missing} (with CI set this fails instead)` : false

async function conf(dir: string, accept: number, backend: number, extra: string[] = []): Promise<string> {
  const file = join(dir, 'stunnel.conf')
  await writeFile(
    file,
    ['foreground = yes', `pid = ${join(dir, 'terminator.pid')}`, ...extra, '[https]', `accept = 127.0.0.1:${accept}`, `connect = 127.0.0.1:${backend}`, `cert = ${join(dir, 'server.crt')}`, `key = ${join(dir, 'server.key')}`, ''].join('\n'),
  )
  return file
}

const serialOnDisk = async (dir: string) => new X509Certificate(await readFile(join(dir, 'server.crt'))).serialNumber

function acmeArgs(directory: string, file: string, challenge: string[], more: string[] = []): string[] {
  return ['acme', '--directory', directory, '--ca-file', PEBBLE_TRUST, '--domain', 'localhost', '--agree-tos', ...challenge, ...more, file]
}

describe('tls-terminator acme against pebble', { skip }, () => {
  test('HTTP-01 through static-server: issued, then renewed while the terminator serves and a client stays connected', async (t) => {
    const dir = await tempDir(t)
    const root = join(dir, 'www')
    const pebble = await startPebble(t, dir)
    // static-server on the port pebble's VA fetches /.well-known/acme-challenge/ from: the
    // webroot form, as behind the chain.
    const web = await startDaemon('static-server', ['--root', root, '--listen', `127.0.0.1:${pebble.httpPort}`], { port: pebble.httpPort })
    t.after(() => web.stop())
    const accept = await freePort()
    const file = await conf(dir, accept, await echoBackend(t))
    const first = await runCli('tls-terminator', acmeArgs(pebble.directory, file, ['--http-01-root', root], ['--once']))
    assert.equal(first.code, 0, first.stdout + first.stderr)
    assert.match(first.stdout, /wrote .*server\.crt and .*server\.key/)
    assert.equal((await stat(join(dir, 'server.key'))).mode & 0o777, 0o600)
    assert.match(pebble.output(), /Issued certificate serial/)

    // Not due: a second run leaves the files alone.
    const serial1 = await serialOnDisk(dir)
    const again = await runCli('tls-terminator', acmeArgs(pebble.directory, file, ['--http-01-root', root], ['--once']))
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /not due: valid until/)
    assert.equal(await serialOnDisk(dir), serial1)

    const d: Daemon = await startDaemon('tls-terminator', [file], { port: accept })
    t.after(() => d.stop())
    const before = await served(accept)
    assert.match(before.issuer, /Pebble/)
    assert.equal(before.serial, serial1)
    const held = tls.connect({ host: '127.0.0.1', port: accept, servername: 'localhost', rejectUnauthorized: false })
    held.on('error', () => undefined)
    t.after(() => held.destroy())
    await once(held, 'secureConnect')

    // The running renewer: due at once (renew-before longer than the lifetime), so it orders,
    // writes, signals; the terminator reloads; the held connection still echoes.
    const mport = await freePort()
    const renewer = await startProcess(
      'tls-terminator acme',
      process.execPath,
      [cliOf('tls-terminator'), ...acmeArgs(pebble.directory, file, ['--http-01-root', root], ['--renew-before', '7200', '--metrics', `127.0.0.1:${mport}`])],
      { port: mport },
    )
    t.after(() => renewer.stop())
    const after = await until('a new client sees the renewed certificate', () => served(accept), (c) => c.serial !== serial1)
    assert.match(after.issuer, /Pebble/)
    assert.match(renewer.output(), /sent SIGHUP to \d+/)
    held.write('still here\n')
    assert.equal(String((await once(held, 'data'))[0]), 'still here\n')
    const m = (await get(mport, '/metrics')).body
    assert.ok(metric(m, 'tls_terminator_acme_orders_total{result="success"}') >= 1, m)
    assert.equal(metric(m, 'tls_terminator_acme_orders_total{result="failure"}'), 0)
  })

  test("HTTP-01 through the chain: pebble asks caching-router, whose VCL (the README's rule) sends the path to static-server's root", async (t) => {
    const dir = await tempDir(t)
    const root = join(dir, 'www')
    const pebble = await startPebble(t, dir)
    const web = await startDaemon('static-server', ['--root', root, '--listen', '127.0.0.1:0'])
    t.after(() => web.stop())
    const vcl = join(dir, 'default.vcl')
    await writeFile(
      vcl,
      [
        'vcl 4.1;',
        'backend node { .host = "127.0.0.1"; .port = "9"; }',
        `backend nginx { .host = "127.0.0.1"; .port = "${web.port}"; }`,
        'sub vcl_recv {',
        '    if (req.url ~ "^/\\.well-known/acme-challenge/") { set req.backend_hint = nginx; return (pass); }',
        '    if (req.url ~ "\\.(js|css|img)$") { set req.backend_hint = nginx; } else { set req.backend_hint = node; }',
        '}',
        '',
      ].join('\n'),
    )
    const router = await startDaemon('caching-router', ['-a', `127.0.0.1:${pebble.httpPort}`, '-f', vcl], { port: pebble.httpPort })
    t.after(() => router.stop())
    const file = await conf(dir, await freePort(), 1)
    const r = await runCli('tls-terminator', acmeArgs(pebble.directory, file, ['--http-01-root', root], ['--once']))
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(pebble.output(), /Issued certificate serial/)
    await waitForOutput(router, /"GET http:\/\/localhost:\d+\/\.well-known\/acme-challenge\/[A-Za-z0-9_-]+ HTTP\/1\.1" 200 /)
  })

  test('TLS-ALPN-01 answered by our responder', async (t) => {
    const dir = await tempDir(t)
    const pebble = await startPebble(t, dir)
    const file = await conf(dir, await freePort(), 1)
    const r = await runCli('tls-terminator', acmeArgs(pebble.directory, file, ['--tls-alpn-01-listen', `127.0.0.1:${pebble.tlsPort}`], ['--once']))
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(pebble.output(), /Issued certificate serial/)
    assert.ok(await serialOnDisk(dir))
  })

  test('a CA that is down: retried with backoff, the certificate on disk untouched, failures in logs and metrics; served once it is up', async (t) => {
    const dir = await tempDir(t)
    const caPort = await freePort()
    const httpPort = await freePort()
    const file = await conf(dir, await freePort(), 1)
    const placeholder = await readFile(`${PEBBLE_TRUST.replace('ca.crt', 'localhost.crt')}`)
    await writeFile(join(dir, 'server.crt'), placeholder)
    await writeFile(join(dir, 'server.key'), await readFile(PEBBLE_TRUST.replace('ca.crt', 'localhost.key')))
    const mport = await freePort()
    const renewer = await startProcess(
      'tls-terminator acme',
      process.execPath,
      [
        cliOf('tls-terminator'),
        ...acmeArgs(`https://127.0.0.1:${caPort}/dir`, file, ['--http-01-listen', `127.0.0.1:${httpPort}`], ['--renew-before', '999999999', '--retry', '1', '--metrics', `127.0.0.1:${mport}`]),
      ],
      { port: mport },
    )
    t.after(() => renewer.stop())
    await until('two failures in a row', async () => metric((await get(mport, '/metrics')).body, 'tls_terminator_acme_failures_in_a_row'), (n) => n >= 2)
    assert.match(renewer.output(), /error tls-terminator acme: ACME order failed \(1 in a row\), the current certificate stays; next try in 1 s: .*ECONNREFUSED/)
    assert.match(renewer.output(), /\(2 in a row\).*next try in 2 s/)
    assert.deepEqual(await readFile(join(dir, 'server.crt')), placeholder)
    assert.equal((await get(mport, '/readyz')).status, 200)

    const pebble = await startPebble(t, dir, { listenPort: caPort, httpPort })
    await until('issued once the CA is up', () => serialOnDisk(dir), (s) => s !== new X509Certificate(placeholder).serialNumber, 1200)
    assert.match(pebble.output(), /Issued certificate serial/)
    const m = (await get(mport, '/metrics')).body
    assert.ok(metric(m, 'tls_terminator_acme_orders_total{result="success"}') >= 1, m)
  })

  test('the real stunnel: it serves the certificate we wrote, and the renewed one after our SIGHUP', { skip: haveStunnel() ? false : 'stunnel not installed' }, async (t) => {
    const dir = await tempDir(t)
    const pebble = await startPebble(t, dir)
    const accept = await freePort()
    const file = await conf(dir, accept, await echoBackend(t))
    const args = ['--http-01-listen', `127.0.0.1:${pebble.httpPort}`]
    const first = await runCli('tls-terminator', acmeArgs(pebble.directory, file, args, ['--once']))
    assert.equal(first.code, 0, first.stdout + first.stderr)
    const stunnel = await startStunnel(t, file, accept)
    const before = await served(accept)
    assert.equal(before.serial, await serialOnDisk(dir))
    const renewed = await runCli('tls-terminator', acmeArgs(pebble.directory, file, args, ['--once', '--renew-before', '7200']))
    assert.equal(renewed.code, 0, renewed.stdout + renewed.stderr)
    assert.match(renewed.stdout, /sent SIGHUP to \d+/)
    // stunnel re-binds its listener on SIGHUP: a connection in that moment is reset, and retried.
    const after = await until(
      'stunnel serves the renewed certificate',
      () => served(accept).catch((err: Error) => ({ serial: err.message, issuer: '' })),
      (c) => c.serial !== before.serial && c.issuer !== '',
    )
    assert.equal(after.serial, await serialOnDisk(dir))
    assert.match(after.issuer, /Pebble/)
    assert.match(stunnel.output(), /Reloading configuration|Configuration successful/)
  })
})

describe('tls-terminator acme: bad command lines', () => {
  test('refused in one line, exit 2, before anything is asked of a CA', async (t) => {
    const dir = await tempDir(t)
    const file = await conf(dir, 1, 2)
    const base = ['acme', '--directory', 'https://127.0.0.1:9/dir', '--domain', 'localhost']
    for (const [args, message] of [
      [[...base, '--http-01-listen', '127.0.0.1:0', file], "--agree-tos is required: making an account agrees to the CA's terms of service"],
      [[...base, '--agree-tos', file], 'give one of --http-01-root, --http-01-listen, --tls-alpn-01-listen'],
      [[...base, '--agree-tos', '--http-01-root', dir, '--http-01-listen', '127.0.0.1:0', file], 'give one of --http-01-root, --http-01-listen, --tls-alpn-01-listen'],
      [['acme', '--directory', 'ftp://x', '--domain', 'a', '--agree-tos', '--http-01-root', dir, file], '--directory: "ftp://x" is not an http(s) URL'],
      [[...base, '--agree-tos', '--http-01-root', dir, '--renew-before', '1d', file], '--renew-before: "1d" is not a whole number of seconds'],
    ] as const) {
      const r = await runCli('tls-terminator', [...args])
      assert.equal(r.code, 2, r.stderr)
      assert.equal(r.stderr.split('\n')[0], `tls-terminator: acme: ${message}`)
    }
  })
})
