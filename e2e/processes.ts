import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { accepts, waitForPort } from './ports.js'

export const REPO = fileURLToPath(new URL('../../', import.meta.url))

export interface Daemon {
  name: string
  child: ChildProcess
  /** Everything the process wrote so far, stdout and stderr interleaved. */
  output(): string
  /** The port it listens on. */
  port: number
  /** Stops the whole process group (nginx workers, varnishd's cache child): TERM, then KILL. */
  stop(): Promise<void>
  /** True while any process of its group is still alive. */
  alive(): boolean
}

export interface StartOptions {
  /** Give up waiting for readiness after this long (the process is then stopped). */
  timeoutMs?: number
  /** Working directory; the repository root by default. */
  cwd?: string
  /** Called with every chunk the process writes (npm start shows them labelled). */
  echo?: (chunk: string) => void
  /**
   * Give the program a real pipe as stdout and stderr (through `sh -c '... | cat'`): Node's
   * stdio pipes are socket pairs, which cannot be open(2)ed again as /dev/stdout.
   */
  pipe?: boolean
}

/** A program that did not become ready; it has been stopped, with its whole process group. */
export class ProcessStartError extends Error {
  constructor(
    message: string,
    readonly pgid: number,
  ) {
    super(message)
  }
}

/** True while any process of the group is alive (signal 0 only checks). */
export function groupAlive(pgid: number): boolean {
  return signalGroup(pgid, 0)
}

/** How the launcher knows a process is ready: the port it was given, or the one it reports. */
export type Readiness = { port: number } | 'listening-line'

/** Node's path to one of our daemons' CLI. */
export function cliOf(pkg: string): string {
  return `${REPO}packages/${pkg}/dist/src/cli.js`
}

const LISTENING = /listening on (?:\[[^\]]+\]|[^\s:]+):(\d+)/
const groups = new Set<number>()

// A test runner or `npm start` that dies must not leave servers behind: the children run in
// their own process groups (so a group signal reaches nginx's workers and varnishd's child),
// which also means the terminal's Ctrl-C does not reach them. So: on exit, kill them (kill(2) is
// synchronous, the only kind of work an exit handler can do); on SIGINT/SIGTERM with nobody else
// listening (a test file; npm start drains them itself), stop them and die of the same signal.
process.on('exit', () => {
  for (const pgid of groups) signalGroup(pgid, 'SIGKILL')
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  const onSignal = () => {
    if (process.listenerCount(signal) > 1) return
    for (const pgid of groups) signalGroup(pgid, 'SIGTERM')
    process.off(signal, onSignal)
    process.kill(process.pid, signal)
  }
  process.on(signal, onSignal)
}

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal)
    return true
  } catch {
    return false
  }
}

/**
 * Starts any program (one of ours or a real one) in its own process group and resolves once it
 * is ready: for a given port, once a TCP connection to it succeeds (bounded); for ours on port
 * 0, once it prints `listening on HOST:PORT`. Rejects with the program's own output if it exits
 * first or is not ready in time, and leaves nothing running in either case.
 */
export async function startProcess(name: string, command: string, args: string[], ready: Readiness, opts: StartOptions = {}): Promise<Daemon> {
  // Something else on the port would answer the readiness probe in the program's place: run it
  // anyway so that it reports the clash in its own words, but never take it as ready.
  const occupied = typeof ready === 'object' && (await accepts(ready.port))
  const [cmd, argv] = opts.pipe ? ['/bin/sh', ['-c', '"$0" "$@" 2>&1 | cat', command, ...args]] : [command, args]
  const child = spawn(cmd, argv, { cwd: opts.cwd ?? REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let out = ''
  const onChunk = (c: Buffer) => {
    const s = c.toString()
    out += s
    opts.echo?.(s)
  }
  child.stdout.on('data', onChunk)
  child.stderr.on('data', onChunk)
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined))
    child.once('error', (err) => resolve(err))
  })
  if (spawned) throw new Error(`${name}: cannot run ${command}: ${spawned.message}`)
  const pgid = child.pid as number
  groups.add(pgid)
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once('exit', () => resolve())
  })

  const stop = async () => {
    // The group leader may already be gone while a worker lives on: signal the group anyway.
    if (!signalGroup(pgid, 'SIGTERM')) {
      groups.delete(pgid)
      return
    }
    const timer = setTimeout(() => signalGroup(pgid, 'SIGKILL'), 5000)
    await exited
    // Workers exit shortly after their master; bounded wait, then force.
    for (let i = 0; i < 100 && signalGroup(pgid, 0); i++) await new Promise((r) => setTimeout(r, 50))
    signalGroup(pgid, 'SIGKILL')
    clearTimeout(timer)
    groups.delete(pgid)
  }

  const deadline = Date.now() + (opts.timeoutMs ?? 20_000)
  let port: number
  try {
    port = await Promise.race([
      occupied
        ? new Promise<number>((_, reject) =>
            setTimeout(() => reject(new Error(`could not listen: 127.0.0.1:${ready.port} is already in use`)), 10_000).unref(),
          )
        : typeof ready === 'object'
          ? waitForPort(ready.port, deadline).then(() => ready.port)
          : portFromOutput(() => out, deadline),
      exited.then(() => {
        throw new Error(`exited with ${child.exitCode ?? child.signalCode} before it was ready`)
      }),
    ])
  } catch (err) {
    await stop()
    throw new ProcessStartError(`${name} ${(err as Error).message}; its output:\n${out}`, pgid)
  }
  return {
    name,
    child,
    port,
    output: () => out,
    stop,
    alive: () => signalGroup(pgid, 0),
  }
}

async function portFromOutput(output: () => string, deadline: number): Promise<number> {
  while (Date.now() < deadline) {
    const m = LISTENING.exec(output())
    if (m) return Number(m[1])
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error('no "listening on" line')
}

/**
 * Starts one of our daemons and resolves once it is listening (on port 0 it reports the port it
 * bound, so tests never race for fixed ports). Rejects with its output if it exits first.
 */
export function startDaemon(name: string, args: string[], opts: StartOptions & { port?: number } = {}): Promise<Daemon> {
  const ready: Readiness = opts.port ? { port: opts.port } : 'listening-line'
  return startProcess(name, process.execPath, [cliOf(name), ...args], ready, opts)
}

/** Runs a CLI to completion and returns its exit code and output. */
export async function runCli(name: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cliOf(name), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString()
  })
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString()
  })
  // A bound, not a measurement: an ACME order against pebble on a loaded two-core machine
  // has taken over 15 s.
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const [code] = (await once(child, 'exit')) as [number | null]
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/**
 * Waits until a daemon's output matches: the line is written by another process after the
 * client saw its answer. Bounded (5 s); failing it is an assertion, not a timing measurement.
 */
export async function waitForOutput(d: Daemon, pattern: RegExp, tries = 100): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (pattern.test(d.output())) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${d.name} never printed ${pattern}; it printed:\n${d.output()}`)
}
