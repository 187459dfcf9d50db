import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { freePort } from './ports.js'
import { REPO } from './processes.js'

export const PEBBLE = '/usr/bin/pebble'
const FIX = `${REPO}packages/tls-terminator/test/fixtures/`
/** Pebble's own HTTPS is served with our localhost test certificate: clients trust our test CA. */
export const PEBBLE_TRUST = `${FIX}ca.crt`

/** Why the ACME tests cannot run, or undefined; with CI set a missing pebble fails instead. */
export function pebbleMissing(): string | undefined {
  if (existsSync(PEBBLE)) return undefined
  return 'pebble is not installed (apt-get install pebble)'
}

export interface Pebble {
  directory: string
  /** Where pebble's VA sends HTTP-01 and TLS-ALPN-01 validations (127.0.0.1 resolves `localhost`). */
  httpPort: number
  tlsPort: number
  output(): string
  stop(): Promise<void>
}

/**
 * Debian's pebble (the ACME test CA) on loopback, its challenge ports pointed at ports the test
 * then serves; every validation is real (no PEBBLE_VA_ALWAYS_VALID). Nonce rejection and VA
 * sleeps are off so that a test's time goes to our client, not to pebble's chaos testing.
 * `listenPort` lets a test start it on a port it already pointed a client at (a CA that comes up late).
 */
export async function startPebble(
  t: TestContext,
  dir: string,
  opts: { validitySeconds?: number; listenPort?: number; httpPort?: number; tlsPort?: number } = {},
): Promise<Pebble> {
  const port = opts.listenPort ?? (await freePort())
  const httpPort = opts.httpPort ?? (await freePort())
  const tlsPort = opts.tlsPort ?? (await freePort())
  const config = join(dir, `pebble-${port}.json`)
  await writeFile(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${await freePort()}`,
        certificate: `${FIX}localhost.crt`,
        privateKey: `${FIX}localhost.key`,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        certificateValidityPeriod: opts.validitySeconds ?? 3600,
      },
    }),
  )
  const child: ChildProcess = spawn(PEBBLE, ['-config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
  })
  let out = ''
  const collect = (c: Buffer) => {
    out += c.toString()
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    await exited
  }
  t.after(stop)
  for (let i = 0; i < 200 && child.exitCode === null && !/Listening on: /.test(out); i++) await new Promise((r) => setTimeout(r, 25))
  if (!/Listening on: /.test(out)) throw new Error(`pebble did not start:\n${out}`)
  return { directory: `https://127.0.0.1:${port}/dir`, httpPort, tlsPort, output: () => out, stop }
}
