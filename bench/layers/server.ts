import { access, constants } from 'node:fs/promises'
import { join } from 'node:path'
import type { OursFrom } from '../options.js'
import { capture, freePort, type Proc, startProc, stopAll as stopAllProcs, waitForPort } from '../procs.js'
import { REPO } from '../templates.js'

/** What a scenario needs to know about the machine and the run. */
export interface BenchContext {
  /** Temp dir of this run: generated configs, logs, document root, varnishd's state. */
  dir: string
  root: string
  cert: string
  key: string
  serverCpus: string | undefined
  loadCpus: string | undefined
  oursFrom: OursFrom
  stunnelDebug: number
}

export type Role = 'ours' | 'theirs' | 'peer'

/** A running contender: one of our daemons, a real program, or a Node peer. */
export interface Server {
  name: string
  role: Role
  port: number
  procs: Proc[]
  /** How one of our daemons was started: from the same config file as its twin, or from flags. */
  startedFrom?: 'config' | 'flags'
  stop(): Promise<void>
}

export const stopAll = stopAllProcs

let serial = 0

/** Starts a program pinned to the server cores and waits until its port accepts connections. */
export async function startServer(
  ctx: BenchContext,
  name: string,
  role: Role,
  port: number,
  command: string,
  args: string[],
): Promise<Server> {
  const logFile = join(ctx.dir, `${name}-${++serial}.log`)
  const proc = await startProc(name, command, args, { cpus: ctx.serverCpus, cwd: REPO, logFile })
  try {
    await waitForPort(proc, port)
  } catch (err) {
    await proc.stop()
    throw err
  }
  return { name, role, port, procs: [proc], stop: () => proc.stop() }
}

/** One of the bench's Node peers or helpers (bench/dist/peers/NAME.js). */
export async function startNodePeer(ctx: BenchContext, name: string, script: string, args: string[]): Promise<Server> {
  const port = await freePort()
  const file = join(REPO, 'bench', 'dist', 'peers', `${script}.js`)
  return startServer(ctx, name, 'peer', port, process.execPath, [file, '--port', String(port), ...args])
}

/** Path of one of our daemons' CLI. */
export function ourCli(pkg: string): string {
  return join(REPO, 'packages', pkg, 'dist', 'src', 'cli.js')
}

/**
 * Whether our daemon reads the real program's config file yet: the CLI's --help is the
 * capability check, so the harness switches by itself when that support lands.
 */
export async function oursReadsConfig(ctx: BenchContext, pkg: string, pattern: RegExp): Promise<boolean> {
  if (ctx.oursFrom !== 'auto') return ctx.oursFrom === 'config'
  const { out } = await capture(process.execPath, [ourCli(pkg), '--help'])
  return pattern.test(out)
}

/** The real program's path, or undefined when it is not installed. */
export async function findProgram(candidates: string[]): Promise<string | undefined> {
  for (const c of candidates) {
    if (
      await access(c, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return c
  }
  return undefined
}

export const PROGRAMS = {
  nginx: { paths: ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx'], install: 'apt-get install nginx-light' },
  varnishd: { paths: ['/usr/sbin/varnishd', '/usr/local/sbin/varnishd'], install: 'apt-get install varnish' },
  stunnel: { paths: ['/usr/bin/stunnel', '/usr/bin/stunnel4', '/usr/local/bin/stunnel'], install: 'apt-get install stunnel4' },
  hitch: { paths: ['/usr/sbin/hitch', '/usr/local/sbin/hitch'], install: 'apt-get install hitch' },
} as const

export type Program = keyof typeof PROGRAMS
