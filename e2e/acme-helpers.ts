import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import tls from 'node:tls'

// What the certificate end-to-end tests share (acme.test.ts with stunnel.conf, acme-hitch.test.ts
// with hitch.conf, certificate-reload.test.ts): a temp dir, an echo backend, the certificate a new client is served, polling.

export async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'acme-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export async function echoBackend(t: TestContext): Promise<number> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined)
    s.pipe(s)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => server.close())
  return (server.address() as net.AddressInfo).port
}

/** The serial and issuer a new client sees on `port`. */
export async function served(port: number): Promise<{ serial: string; issuer: string }> {
  const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false })
  await once(s, 'secureConnect')
  const c = s.getPeerCertificate()
  s.destroy()
  return { serial: c.serialNumber, issuer: String(c.issuer.CN) }
}

export async function until<T>(what: string, probe: () => Promise<T>, check: (v: T) => boolean, tries = 600): Promise<T> {
  let v = await probe()
  for (let i = 0; i < tries && !check(v); i++) {
    await new Promise((r) => setTimeout(r, 50))
    v = await probe()
  }
  assert.ok(check(v), `${what}: last seen ${JSON.stringify(v)}`)
  return v
}

export function metric(body: string, sample: string): number {
  const line = body.split('\n').find((l) => l.startsWith(`${sample} `))
  return Number(line?.slice(sample.length + 1))
}

