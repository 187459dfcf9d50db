import type { Logger } from '@edgestack/common'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { freePort } from '@edgestack/common/test/ports'

/** The checked-in certificates (see fixtures/make.sh): a CA, leaves for localhost and example names. */
export const FIXTURES = fileURLToPath(new URL('../../test/fixtures/', import.meta.url))
export const fixture = (name: string) => join(FIXTURES, name)

/** A scratch directory removed after the test. */
export async function scratch(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tls-terminator-test-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Writes a config file (lines joined with \n) into `dir` and returns its path. */
export async function writeConf(dir: string, lines: string[], name = 'stunnel.conf'): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, `${lines.join('\n')}\n`)
  return file
}

/** A minimal valid service using the localhost fixture. */
export const certLines = [`cert = ${fixture('localhost.crt')}`, `key = ${fixture('localhost.key')}`]


/** A logger that keeps its lines, for asserting on the connection log. */
export function captureLogger(): { logger: Logger; lines: string[]; waitFor(re: RegExp): Promise<string> } {
  const lines: string[] = []
  // Child loggers' fields follow the message as `key=value`, as the daemon's text format writes them.
  const make = (fields: Record<string, unknown>): Logger => {
    const add = (level: string) => (message: string, meta?: Record<string, unknown>) => {
      const all = Object.entries({ ...fields, ...meta }).map(([k, v]) => ` ${k}=${String(v)}`)
      lines.push(`${level} ${message}${all.join('')}`)
    }
    const child = (meta: Record<string, unknown>) => make({ ...fields, ...meta })
    return { info: add('info'), warn: add('warn'), error: add('error'), debug: add('debug'), child } as unknown as Logger
  }
  const logger = make({})
  return {
    logger,
    lines,
    async waitFor(re) {
      // Bounded: the line is written when the server sees the close, a moment after the client.
      for (let i = 0; i < 200; i++) {
        const hit = lines.find((l) => re.test(l))
        if (hit) return hit
        await new Promise((r) => setTimeout(r, 25))
      }
      throw new Error(`no log line matched ${re}; got:\n${lines.join('\n')}`)
    },
  }
}

export interface Backend {
  port: number
  /** Every connection's received bytes, and the sockets. */
  received: Buffer[][]
  sockets: net.Socket[]
  close(): Promise<void>
}

/** A plain TCP backend that echoes (or answers `reply`), with half-close allowed. */
export async function startBackend(
  t: { after(fn: () => Promise<void>): void },
  mode: 'echo' | { reply: string } = 'echo',
): Promise<Backend> {
  const received: Buffer[][] = []
  const sockets: net.Socket[] = []
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const chunks: Buffer[] = []
    received.push(chunks)
    sockets.push(s)
    s.on('error', () => undefined)
    s.on('data', (c: Buffer) => chunks.push(c))
    if (mode === 'echo') s.on('data', (c: Buffer) => s.write(c))
    else s.write(mode.reply)
    s.on('end', () => s.end())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const b: Backend = {
    port: (server.address() as net.AddressInfo).port,
    received,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
  t.after(() => b.close())
  return b
}

export const CA = readFileSync(fixture('ca.crt'))

export interface ClientResult {
  /** Bytes received before the connection ended. */
  reply: Buffer
  error: Error | undefined
  peerSubject: string | undefined
  protocol: string | null
  reused: boolean
}

/**
 * A node:tls client that sends `data`, half-closes, and collects the answer until the server
 * closes. Never rejects: refusals show up as `error` or an empty reply.
 */
export function tlsRoundTrip(port: number, data: string | Buffer, opts: tls.ConnectionOptions = {}): Promise<ClientResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let error: Error | undefined
    let peerSubject: string | undefined
    let protocol: string | null = null
    let reused = false
    const s = tls.connect({ host: '127.0.0.1', port, ca: CA, servername: 'localhost', ...opts })
    s.on('secureConnect', () => {
      peerSubject = s.getPeerX509Certificate()?.subject
      protocol = s.getProtocol()
      reused = s.isSessionReused()
      s.end(data)
    })
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('error', (err) => {
      error = err
    })
    s.on('close', () => resolve({ reply: Buffer.concat(chunks), error, peerSubject, protocol, reused }))
    s.setTimeout(10_000, () => s.destroy(new Error('client gave up after 10 s')))
  })
}

export const STUNNEL = '/usr/bin/stunnel'

/** True when the real stunnel is installed (the differential tests skip otherwise). */
export function haveStunnel(): boolean {
  return existsSync(STUNNEL)
}


export interface Running {
  output(): string
  stop(): Promise<void>
}

/**
 * Runs `program args` (the real stunnel or hitch), resolved once `port` accepts; stopped with
 * SIGTERM after the test. Rejects with the program's own output if it exits first.
 */
export async function startProgram(t: { after(fn: () => Promise<void>): void }, program: string, args: string[], port: number): Promise<Running> {
  if (!existsSync(program)) throw new Error(`${program} is not installed`)
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const collect = (c: Buffer) => {
    out += c.toString()
  }
  child.stdout.on('data', collect)
  child.stderr.on('data', collect)
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    await exited
  }
  t.after(stop)
  for (let i = 0; i < 400 && child.exitCode === null; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy()
        resolve(true)
      })
      c.on('error', () => resolve(false))
    })
    if (up) return { output: () => out, stop }
    await new Promise((r) => setTimeout(r, 25))
  }
  await stop()
  throw new Error(`${program} did not start:\n${out}`)
}

/** The real stunnel on `file`, which must say `foreground = yes` and accept on `port`. */
export function startStunnel(t: { after(fn: () => Promise<void>): void }, file: string, port: number): Promise<Running> {
  return startProgram(t, STUNNEL, [file], port)
}

export { freePort }
