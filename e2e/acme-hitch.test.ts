import assert from 'node:assert/strict'
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, type TestContext, test } from 'node:test'
import tls from 'node:tls'
import { echoBackend, served, tempDir, until } from './acme-helpers.js'
import { programMissing } from './layers.js'
import { PEBBLE_TRUST, pebbleMissing, startPebble } from './pebble.js'
import { portInRange } from './ports.js'
import { runCli, startDaemon, startProcess } from './processes.js'

// issue 20 with issue 19's file: `tls-terminator acme --config=hitch.conf` manages the
// certificate hitch.conf names. A `pem-file` string is one PEM holding the chain and the key
// (hitch.conf(5)): both are written into it in one atomic rename, never a file with a new
// certificate and an old key. A `pem-file` block's `cert` and `private-key` are two files. The
// renewal is picked up by our terminator reading the same hitch.conf and by the real hitch after
// the SIGHUP sent to the pid in its `--pidfile` (hitch re-reads its certificates on SIGHUP).

const HITCH = '/usr/sbin/hitch'
const missing = pebbleMissing() ?? (await programMissing(HITCH, 'hitch'))
if (missing && process.env.CI) throw new Error(`${missing}: the hitch.conf ACME tests cannot run`)
if (missing) process.stderr.write(`SKIP: ${missing}: the hitch.conf ACME tests are skipped (with CI set they fail)\n`)
const skip = missing ? `${missing} (with CI set this fails instead)` : false

/** This file's programs take their ports from their files: ports of the range this suite is given. */
const taken = new Set<number>()
const port = () => portInRange(32000, 33000, taken)

/**
 * hitch refuses to run as root without `user` (its example's "nobody"); ours runs as root without
 * it. With `user`, our terminator (one process, or its workers) has dropped root when it re-reads
 * the 0600 PEM, which hitch's manager reads as root: that difference is in the README, and our
 * terminator is started here without it (`asRoot`).
 */
async function hitchConf(dir: string, accept: number, backend: number, pem: string[], asRoot = false): Promise<string> {
  const file = join(dir, 'hitch.conf')
  const user = process.getuid?.() === 0 && !asRoot ? ['user = "nobody"'] : []
  await writeFile(file, [`frontend = "[127.0.0.1]:${accept}"`, `backend = "[127.0.0.1]:${backend}"`, ...pem, ...user, ''].join('\n'))
  return file
}

function acmeArgs(directory: string, conf: string, httpPort: number, more: string[] = []): string[] {
  return ['acme', '--directory', directory, '--ca-file', PEBBLE_TRUST, '--domain', 'localhost', '--agree-tos', '--http-01-listen', `127.0.0.1:${httpPort}`, ...more, `--config=${conf}`]
}

async function pebbleOnRange(t: TestContext, dir: string) {
  return startPebble(t, dir, { listenPort: await port(), httpPort: await port(), tlsPort: await port() })
}

/** The combined PEM: its certificate's serial, and whether its key is the certificate's. */
async function combined(file: string): Promise<{ serial: string; keyMatches: boolean }> {
  const text = await readFile(file, 'utf8')
  const cert = new X509Certificate(text)
  const key = /-----BEGIN (?:EC |RSA )?PRIVATE KEY-----[\s\S]+?-----END (?:EC |RSA )?PRIVATE KEY-----/.exec(text)
  assert.ok(key, `${file} holds no private key`)
  return { serial: cert.serialNumber, keyMatches: cert.checkPrivateKey(createPrivateKey(key[0])) }
}

describe('tls-terminator acme --config=hitch.conf against pebble', { skip }, () => {
  test('pem-file as one PEM: issued whole (chain and key, 0600), renewed while our terminator on the same hitch.conf serves and a client stays connected', async (t) => {
    const dir = await tempDir(t)
    const pebble = await pebbleOnRange(t, dir)
    const accept = await port()
    const pem = join(dir, 'localhost.pem')
    const conf = await hitchConf(dir, accept, await echoBackend(t), [`pem-file = "${pem}"`], true)
    const first = await runCli('tls-terminator', acmeArgs(pebble.directory, conf, pebble.httpPort, ['--once']))
    assert.equal(first.code, 0, first.stdout + first.stderr)
    assert.match(first.stdout, /wrote .*localhost\.pem \(chain and key in one PEM\)/)
    assert.equal((await stat(pem)).mode & 0o777, 0o600)
    const issued = await combined(pem)
    assert.ok(issued.keyMatches, 'the key in the PEM is the certificate key')
    assert.match((await readFile(pem, 'utf8')).split('-----BEGIN CERTIFICATE-----').length > 2 ? 'chain' : 'leaf only', /chain/)

    const pid = join(dir, 'terminator.pid')
    const d = await startDaemon('tls-terminator', [`--config=${conf}`, `--pidfile=${pid}`], { port: accept })
    t.after(() => d.stop())
    assert.equal((await served(accept)).serial, issued.serial)
    const held = tls.connect({ host: '127.0.0.1', port: accept, servername: 'localhost', rejectUnauthorized: false })
    held.on('error', () => undefined)
    t.after(() => held.destroy())
    await once(held, 'secureConnect')

    const renewed = await runCli('tls-terminator', acmeArgs(pebble.directory, conf, pebble.httpPort, ['--once', '--renew-before', '7200', '--pid-file', pid]))
    assert.equal(renewed.code, 0, renewed.stdout + renewed.stderr)
    assert.match(renewed.stdout, /sent SIGHUP to \d+/)
    const now = await combined(pem)
    assert.notEqual(now.serial, issued.serial)
    assert.ok(now.keyMatches, 'the renewed PEM holds the renewed key')
    const after = await until('a new client sees the renewed certificate', () => served(accept), (c) => c.serial !== issued.serial).catch((err: Error) => {
      throw new Error(`${err.message}\n${d.output()}`)
    })
    assert.equal(after.serial, now.serial)
    assert.match(after.issuer, /Pebble/)
    held.write('still here\n')
    assert.equal(String((await once(held, 'data'))[0]), 'still here\n')
  })

  test('the real hitch: it serves the PEM we wrote, and the renewed one after our SIGHUP to its --pidfile', async (t) => {
    const dir = await tempDir(t)
    const pebble = await pebbleOnRange(t, dir)
    const accept = await port()
    const pem = join(dir, 'localhost.pem')
    const conf = await hitchConf(dir, accept, await echoBackend(t), [`pem-file = "${pem}"`])
    const first = await runCli('tls-terminator', acmeArgs(pebble.directory, conf, pebble.httpPort, ['--once']))
    assert.equal(first.code, 0, first.stdout + first.stderr)
    const pid = join(dir, 'hitch.pid')
    const hitch = await startProcess('hitch', HITCH, [`--config=${conf}`, `--pidfile=${pid}`], { port: accept })
    t.after(() => hitch.stop())
    const before = await served(accept)
    assert.equal(before.serial, (await combined(pem)).serial)
    const renewed = await runCli('tls-terminator', acmeArgs(pebble.directory, conf, pebble.httpPort, ['--once', '--renew-before', '7200', '--pid-file', pid]))
    assert.equal(renewed.code, 0, renewed.stdout + renewed.stderr)
    assert.match(renewed.stdout, /sent SIGHUP to \d+/)
    const after = await until(
      'hitch serves the renewed certificate',
      () => served(accept).catch((err: Error) => ({ serial: err.message, issuer: '' })),
      (c) => c.serial !== before.serial && c.issuer !== '',
    )
    assert.equal(after.serial, (await combined(pem)).serial)
    assert.match(after.issuer, /Pebble/)
  })

  test("a pem-file block: the certificate chain to its cert, the key to its private-key", async (t) => {
    const dir = await tempDir(t)
    const pebble = await pebbleOnRange(t, dir)
    const crt = join(dir, 'server.crt')
    const key = join(dir, 'server.key')
    const conf = await hitchConf(dir, await port(), 1, ['pem-file = {', `    cert = "${crt}"`, `    private-key = "${key}"`, '}'])
    const r = await runCli('tls-terminator', acmeArgs(pebble.directory, conf, pebble.httpPort, ['--once']))
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(r.stdout, /wrote .*server\.crt and .*server\.key/)
      assert.ok(new X509Certificate(await readFile(crt)).checkPrivateKey(createPrivateKey(await readFile(key))))
    assert.doesNotMatch(await readFile(crt, 'utf8'), /PRIVATE KEY/)
    assert.equal((await stat(key)).mode & 0o777, 0o600)
  })
})

describe('tls-terminator acme --config=hitch.conf: bad command lines', () => {
  test('refused in one line, exit 2, before anything is asked of a CA', async (t) => {
    const dir = await tempDir(t)
    const one = await hitchConf(dir, 1, 2, [`pem-file = "${join(dir, 'a.pem')}"`])
    const two = join(dir, 'two.conf')
    await writeFile(two, [`frontend = "[127.0.0.1]:1+${join(dir, 'b.pem')}"`, `pem-file = "${join(dir, 'a.pem')}"`, ''].join('\n'))
    const none = join(dir, 'none.conf')
    await writeFile(none, 'frontend = "[127.0.0.1]:1"\n')
    const base = ['acme', '--directory', 'https://127.0.0.1:9/dir', '--domain', 'localhost', '--agree-tos', '--http-01-listen', '127.0.0.1:0']
    for (const [args, message] of [
      [[...base, `--config=${one}`, one], 'give either --config=HITCH.CONF or a stunnel.conf FILE, not both'],
      [[...base, `--config=${two}`], `${two} names 2 certificates: choose one with --service FILE (${join(dir, 'b.pem')}, ${join(dir, 'a.pem')})`],
      [[...base, '--service', 'x.pem', `--config=${one}`], `--service x.pem: ${one} names no such pem-file (it has ${join(dir, 'a.pem')})`],
      [[...base, `--config=${none}`], `${none} names no pem-file`],
    ] as const) {
      const r = await runCli('tls-terminator', [...args])
      assert.equal(r.code, 2, r.stderr)
      assert.equal(r.stderr.split('\n')[0], `tls-terminator: acme: ${message}`)
    }
  })
})
