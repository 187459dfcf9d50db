import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { fixture } from './helpers.js'

export { type Running, startProgram } from './helpers.js'

export const HITCH = '/usr/sbin/hitch'
export const OUR_CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url))

/**
 * Whether the differential tests can run: without hitch they skip loudly, except with CI set,
 * where a missing peer must fail the run (as the other differential tests do).
 */
export function hitchMissing(): string | false {
  if (existsSync(HITCH)) return false
  if (process.env.CI) return false
  const why = `${HITCH} is not installed (apt-get install hitch): the hitch differential is skipped; with CI set it fails`
  process.stderr.write(`SKIP: ${why}\n`)
  return why
}

/** The fixture's localhost certificate and key as hitch's pem-file block. */
export const pemBlock = ['pem-file = {', `  cert = "${fixture('localhost.crt')}"`, `  private-key = "${fixture('localhost.key')}"`, '}']

/** hitch refuses to run its workers as root: it is told to drop to nobody, as its example says. */
export const userLines = process.getuid?.() === 0 ? ['user = "nobody"'] : []

/** `program -t --config=FILE`: its exit status and what it printed. */
export function testConfig(program: string, file: string): Promise<{ code: number | null; output: string }> {
  const args = program === HITCH ? ['-t', `--config=${file}`] : [OUR_CLI, '-t', `--config=${file}`]
  const child = spawn(program === HITCH ? HITCH : process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (c: Buffer) => {
    output += c.toString()
  })
  child.stderr.on('data', (c: Buffer) => {
    output += c.toString()
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    }),
  )
}

/** A backend that keeps everything each connection sent, answering nothing. */
export async function captureBackend(t: { after(fn: () => Promise<void>): void }): Promise<{ port: number; next(): Promise<Buffer> }> {
  const waiting: ((b: Buffer) => void)[] = []
  const done: Buffer[] = []
  const server = net.createServer((s) => {
    const chunks: Buffer[] = []
    s.on('error', () => undefined)
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('close', () => {
      const b = Buffer.concat(chunks)
      const w = waiting.shift()
      if (w) w(b)
      else done.push(b)
    })
    s.on('end', () => s.end())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return {
    port: (server.address() as net.AddressInfo).port,
    next: () => {
      const b = done.shift()
      return b ? Promise.resolve(b) : new Promise<Buffer>((resolve) => waiting.push(resolve))
    },
  }
}
