import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { ensureDevCertificates } from '../src/dev-cert.js'
import { scratch } from './helpers.js'

const run = promisify(execFile)

test('the dev certificates are valid for at most 825 days in total, as openssl reads them', async (t) => {
  const dir = await scratch(t)
  const { files } = await ensureDevCertificates(dir, { keyBits: 1024 })
  for (const file of [files.cert, files.caCert]) {
    const { stdout } = await run('openssl', ['x509', '-noout', '-startdate', '-enddate', '-in', file])
    const start = Date.parse(/notBefore=(.*)/.exec(stdout)?.[1] ?? '')
    const end = Date.parse(/notAfter=(.*)/.exec(stdout)?.[1] ?? '')
    assert.ok(start <= Date.now(), stdout)
    assert.ok(end - start <= 825 * 86_400_000, `${file}: ${(end - start) / 86_400_000} days`)
  }
})
