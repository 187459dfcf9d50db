import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { describe, test } from 'node:test'
import { promisify } from 'node:util'
import { certIdOf, planRenewal } from '../src/acme/renewal.js'
import { fixture } from './helpers.js'

const run = promisify(execFile)

// RFC 9773 (ARI): the CertID a client asks renewalInfo about, checked against what openssl
// reads from the same certificate, and when renewal falls with and without the CA's window.

/** openssl's reading of the AKI keyIdentifier and the serial, as RFC 9773 §4.1 builds the CertID from them. */
async function certIdByOpenssl(file: string): Promise<string> {
  const { stdout } = await run('openssl', ['x509', '-in', file, '-noout', '-ext', 'authorityKeyIdentifier', '-serial'])
  const aki = /^\s+(?:keyid:)?([0-9A-F:]{20,})\s*$/m.exec(stdout)?.[1] as string
  let serial = Buffer.from((/^serial=([0-9A-F]+)$/m.exec(stdout)?.[1] as string).padStart(2, '0'), 'hex')
  if ((serial[0] as number) & 0x80) serial = Buffer.concat([Buffer.from([0]), serial])
  return `${Buffer.from(aki.replaceAll(':', ''), 'hex').toString('base64url')}.${serial.toString('base64url')}`
}

describe('ACME renewal (RFC 9773)', () => {
  for (const name of ['localhost.crt', 'example.crt', 'client.crt', 'stranger.crt']) {
    test(`CertID of ${name} is openssl's AKI and serial, base64url`, async () => {
      const x = new X509Certificate(await readFile(fixture(name)))
      assert.equal(certIdOf(x), await certIdByOpenssl(fixture(name)))
    })
  }

  test("with the CA's window, a moment inside it; without, a third of the lifetime before the end", () => {
    const held = { notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2026-04-01T00:00:00Z'), names: ['a'], certId: 'x.y' }
    const ari = { start: new Date('2026-03-01T00:00:00Z'), end: new Date('2026-03-03T00:00:00Z'), retryAfterMs: undefined }
    assert.equal(planRenewal(held, { ari, random: () => 0 }).at.toISOString(), '2026-03-01T00:00:00.000Z')
    assert.equal(planRenewal(held, { ari, random: () => 0.5 }).at.toISOString(), '2026-03-02T00:00:00.000Z')
    // 90 days: renewed with 30 left.
    assert.equal(planRenewal(held, {}).at.toISOString(), '2026-03-02T00:00:00.000Z')
    assert.equal(planRenewal(held, { renewBeforeMs: 86_400_000 }).at.toISOString(), '2026-03-31T00:00:00.000Z')
  })
})
