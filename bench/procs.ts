import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { open, readFile } from 'node:fs/promises'
import net from 'node:net'
import { freePort } from '@edgestack/common/test/ports'

/** A process the harness started: it is the only kind the harness ever signals. */
export interface Proc {
  name: string
  pid: number
  child: ChildProcess
  logFile: string
  /** Resident memory of the process and its descendants now (nginx workers, varnishd's child). */
  rssKiB(): Promise<number>
  /** Peak resident memory (VmHWM) of the process and its descendants. */
  peakRssKiB(): Promise<number>
  stop(): Promise<void>
}

export interface SpawnOptions {
  /** CPU list for taskset (`0`, `0-1`), or undefined for no pinning. */
  cpus?: string | undefined
  cwd?: string
  /** stdout and stderr go here: access logs must not fill a pipe nobody reads. */
  logFile: string
  env?: NodeJS.ProcessEnv
}

const running = new Set<Proc>()

/** Everything still running, for the exit path: stopped by pid, never by name. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()))
}

export function startProc(name: string, command: string, args: string[], opts: SpawnOptions): Promise<Proc> {
  return (async () => {
    const log = await open(opts.logFile, 'a')
    const [cmd, argv] = opts.cpus === undefined ? [command, args] : ['taskset', ['-c', opts.cpus, command, ...args]]
    // taskset execs the command, so the pid we hold is the program's own.
    const child = spawn(cmd, argv, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', log.fd, log.fd],
    })
    // Listen before any await: 'spawn' and 'error' fire on the next tick.
    const spawned = Promise.race([
      once(child, 'spawn').then(() => true),
      once(child, 'error').then(([err]) => {
        throw new Error(`${name}: cannot start ${command}: ${(err as Error).message}`)
      }),
    ])
    await log.close()
    await spawned
    if (child.pid === undefined) throw new Error(`${name}: no pid`)
    const pid = child.pid
    let stopping: Promise<void> | undefined
    const proc: Proc = {
      name,
      pid,
      child,
      logFile: opts.logFile,
      rssKiB: async () => sumStatus(await processTree(pid), 'VmRSS'),
      peakRssKiB: async () => sumStatus(await processTree(pid), 'VmHWM'),
      stop() {
        stopping ??= (async () => {
          const tree = await processTree(pid)
          if (child.exitCode === null && child.signalCode === null) {
            const exited = once(child, 'exit')
            child.kill('SIGTERM')
            const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
            await exited
            clearTimeout(timer)
          }
          // Descendants that outlived their parent (a varnishd child, an nginx worker).
          for (const p of tree) {
            if (p !== pid) killQuietly(p)
          }
          running.delete(proc)
        })()
        return stopping
      },
    }
    running.add(proc)
    return proc
  })()
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

/** The pid and all its descendants, from /proc/PID/task/*\/children. */
export async function processTree(pid: number): Promise<number[]> {
  const out: number[] = []
  const queue = [pid]
  while (queue.length > 0) {
    const p = queue.shift() as number
    out.push(p)
    const text = await readFile(`/proc/${p}/task/${p}/children`, 'utf8').catch(() => '')
    for (const c of text.split(' ')) {
      if (c.trim() !== '') queue.push(Number(c))
    }
  }
  return out
}

async function sumStatus(pids: number[], field: 'VmRSS' | 'VmHWM'): Promise<number> {
  let total = 0
  for (const p of pids) {
    const status = await readFile(`/proc/${p}/status`, 'utf8').catch(() => '')
    const line = status.split('\n').find((l) => l.startsWith(`${field}:`))
    if (line) total += Number.parseInt(line.slice(field.length + 1), 10) || 0
  }
  return total
}


/** Resolves once the port accepts connections; rejects with the log tail if the process exits first. */
export async function waitForPort(proc: Proc, port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`${proc.name} exited (${proc.child.exitCode ?? proc.child.signalCode}) before listening:\n${await logTail(proc)}`)
    }
    if (await canConnect(port)) return
    if (Date.now() > deadline) throw new Error(`${proc.name} did not listen on ${port} in time:\n${await logTail(proc)}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

export async function logTail(proc: Proc, lines = 15): Promise<string> {
  const text = await readFile(proc.logFile, 'utf8').catch(() => '')
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}

/** Runs a command to completion (version probes, --help); never throws. */
export function capture(
  command: string,
  args: string[],
  timeoutMs = 10_000,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    let out = ''
    let child: ChildProcess
    try {
      child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env })
    } catch (err) {
      resolve({ code: null, out: (err as Error).message })
      return
    }
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString()
    })
    child.stderr?.on('data', (c: Buffer) => {
      out += c.toString()
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', (err) => {
      clearTimeout(timer)
      resolve({ code: null, out: err.message })
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, out })
    })
  })
}

export { freePort }
