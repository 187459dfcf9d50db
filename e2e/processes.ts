import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

export const REPO = fileURLToPath(new URL('../../', import.meta.url))

export interface Daemon {
  name: string
  child: ChildProcess
  /** Everything the process wrote so far, stdout and stderr interleaved. */
  output(): string
  /** The port it reported in its `listening on HOST:PORT` line. */
  port: number
  stop(): Promise<void>
}

/** Node's path to one of our daemons' CLI. */
export function cliOf(pkg: string): string {
  return `${REPO}packages/${pkg}/dist/src/cli.js`
}

/**
 * Starts a daemon on port 0 and resolves once it says which port it bound, so tests never
 * race for fixed ports. Rejects with its output if it exits first.
 */
export async function startDaemon(name: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<Daemon> {
  const child = spawn(process.execPath, [cliOf(name), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const onChunk = (c: Buffer) => {
    out += c.toString()
  }
  child.stdout.on('data', onChunk)
  child.stderr.on('data', onChunk)
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in time:\n${out}`)), opts.timeoutMs ?? 15_000)
    const check = () => {
      const m = /listening on (?:\[[^\]]+\]|[^\s:]+):(\d+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        child.off('exit', onExit)
        resolve(Number(m[1]))
      }
    }
    const onExit = (code: number | null) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited with ${code} before listening:\n${out}`))
    }
    child.stdout.on('data', check)
    child.on('exit', onExit)
  })
  return {
    name,
    child,
    port,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
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
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
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
