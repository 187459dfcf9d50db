import assert from 'node:assert/strict'
import { once } from 'node:events'
import { copyFile, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, type TestContext, test } from 'node:test'
import tls from 'node:tls'
import { echoBackend } from './acme-helpers.js'
import { get } from './daemon-fixtures.js'
import { freePort } from './ports.js'
import { cliOf, type Daemon, REPO, startDaemon, startProcess } from './processes.js'
import { until } from './acme-helpers.js'

// issue 20, certificates: tls-terminator reloads its certificate and key when the files change
// (as on SIGHUP), a connection made before keeps going on the certificate it started with, a new
// one sees the new certificate; a broken or mismatched replacement keeps the old one serving,
// with one error line and a failure counted in /metrics. Assertions poll; none measures time.

const FIX = `${REPO}packages/tls-terminator/test/fixtures/`

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cert-reload-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Replaces `to` by `from` the atomic way (a copy beside it, then rename), as an ACME client does. */
async function replace(from: string, to: string): Promise<void> {
  await copyFile(from, `${to}.tmp`)
  await rename(`${to}.tmp`, to)
}

async function subjectSeen(port: number): Promise<string> {
  const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false })
  await once(s, 'secureConnect')
  const cn = s.getPeerCertificate().subject.CN as string
  s.destroy()
  return cn
}

async function echoes(s: tls.TLSSocket, text: string): Promise<void> {
  s.write(text)
  let got = ''
  while (got.length < text.length) got += String((await once(s, 'data'))[0])
  assert.equal(got, text)
}

const failures = async (mport: number) => {
  const m = /^tls_terminator_reloads_total\{result="failure"\} (\d+)$/m.exec((await get(mport, '/metrics')).body)
  return Number(m?.[1])
}

for (const workers of ['1', '2']) {
  describe(`tls-terminator --workers ${workers}: certificate files replaced on disk`, () => {
    test('an open connection keeps going, a new one sees the new certificate; a broken one is refused and counted', async (t) => {
      const dir = await tempDir(t)
      const cert = join(dir, 'server.crt')
      const key = join(dir, 'server.key')
      await copyFile(`${FIX}localhost.crt`, cert)
      await copyFile(`${FIX}localhost.key`, key)
      const backend = await echoBackend(t)
      const mport = await freePort()
      const d: Daemon = await startDaemon('tls-terminator', [
        '--accept', '127.0.0.1:0', '--connect', String(backend), '--cert', cert, '--key', key,
        '--workers', workers, '--metrics', `127.0.0.1:${mport}`,
      ])
      t.after(() => d.stop())
      await until('ready', async () => (await get(mport, '/readyz')).status, (s) => s === 200)

      const held = tls.connect({ host: '127.0.0.1', port: d.port, rejectUnauthorized: false })
      held.on('error', () => undefined)
      t.after(() => held.destroy())
      await once(held, 'secureConnect')
      assert.equal(held.getPeerCertificate().subject.CN, 'localhost')
      await echoes(held, 'before\n')

      // The key first, then the certificate: between the two the pair does not match, and the
      // settle time keeps that moment from being loaded (or counted as a failure).
      await replace(`${FIX}example.key`, key)
      await replace(`${FIX}example.crt`, cert)
      await until('a new client sees the new certificate', () => subjectSeen(d.port), (cn) => cn === 'www.example.com')
      await echoes(held, 'after\n')
      assert.equal(held.getPeerCertificate().subject.CN, 'localhost')
      assert.equal(await failures(mport), 0)

      // A truncated certificate: refused, the running one kept, one error line, one failure.
      const errorsBefore = d.output().split('\n').filter((l) => / error /.test(l)).length
      await writeFile(`${cert}.tmp`, '-----BEGIN CERTIFICATE-----\nMIIB\n')
      await rename(`${cert}.tmp`, cert)
      await until('the failure is counted', () => failures(mport), (n) => n === 1)
      assert.equal(await subjectSeen(d.port), 'www.example.com')
      const errors = d.output().split('\n').filter((l) => / error /.test(l))
      assert.equal(errors.length - errorsBefore, 1, d.output())
      assert.match(errors.at(-1) as string, /reload failed, keeping the running configuration: .*server\.crt/)

      // A well-formed certificate whose key is not the one on disk: refused the same way.
      await replace(`${FIX}localhost.crt`, cert)
      await until('the mismatch is counted', () => failures(mport), (n) => n === 2)
      // The counter comes from the metrics endpoint, the line through the workers' stdout pipe:
      // the line may arrive a moment after the count.
      await until('the mismatch is logged', async () => d.output(), (o) => /does not match certificate/.test(o))
      assert.equal(await subjectSeen(d.port), 'www.example.com')
      await echoes(held, 'still\n')

      // Its key arrives: the pair matches again and loads.
      await replace(`${FIX}localhost.key`, key)
      await until('the pair loads', () => subjectSeen(d.port), (cn) => cn === 'localhost')
      assert.equal(await failures(mport), 2)
    })
  })
}

describe('tls-terminator -fd 3: the configuration read once, its certificate files still reloaded', () => {
  test('a replaced certificate is served, though the descriptor cannot be read again', async (t) => {
    const dir = await tempDir(t)
    const cert = join(dir, 'server.crt')
    const key = join(dir, 'server.key')
    await copyFile(`${FIX}localhost.crt`, cert)
    await copyFile(`${FIX}localhost.key`, key)
    const conf = join(dir, 'stunnel.conf')
    await writeFile(conf, `foreground = yes\n[https]\naccept = 127.0.0.1:0\nconnect = ${await echoBackend(t)}\ncert = ${cert}\nkey = ${key}\n`)
    // stunnel -fd N: the configuration comes from descriptor 3, a file the shell opened.
    const d = await startProcess('tls-terminator', '/bin/sh', ['-c', `exec "${process.execPath}" "${cliOf('tls-terminator')}" -fd 3 3<"${conf}"`], 'listening-line')
    t.after(() => d.stop())
    assert.equal(await subjectSeen(d.port), 'localhost')
    await replace(`${FIX}example.key`, key)
    await replace(`${FIX}example.crt`, cert)
    await until('the new certificate', () => subjectSeen(d.port), (cn) => cn === 'www.example.com')
    assert.doesNotMatch(d.output(), / error /)
  })
})
