import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { capture } from '../procs.js'
import type { LoadResult } from './result.js'

export type ClientName = 'handshakes' | 'ws-echo' | 'idle' | 'polling'

function clientPath(name: ClientName): string {
  return fileURLToPath(new URL(`../clients/${name}.js`, import.meta.url))
}

function command(name: ClientName, args: string[], cpus: string | undefined): [string, string[]] {
  const argv = [clientPath(name), ...args]
  return cpus === undefined ? [process.execPath, argv] : ['taskset', ['-c', cpus, process.execPath, ...argv]]
}

/** Runs one of the bench's Node clients, pinned like the load generator, and reads its JSON line. */
export async function runClient(name: ClientName, args: string[], cpus: string | undefined, timeoutS: number): Promise<LoadResult> {
  const [cmd, argv] = command(name, args, cpus)
  const { code, out } = await capture(cmd, argv, timeoutS * 1000)
  const line = out.trim().split('\n').pop() ?? ''
  if (code !== 0 || !line.startsWith('{')) throw new Error(`bench client ${name} exited with ${code}: ${out.trim()}`)
  return JSON.parse(line) as LoadResult
}

export interface IdleHold {
  open: number
  failed: number
  attempted: number
  release(): Promise<void>
}

/** Starts the idle-connection client and resolves once it holds its connections. */
export async function holdIdle(args: string[], cpus: string | undefined, timeoutS: number): Promise<IdleHold> {
  const [cmd, argv] = command('idle', [...args, '--timeout', String(timeoutS), '--hold', String(timeoutS + 60)], cpus)
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  child.stderr.on('data', (c: Buffer) => {
    out += c.toString()
  })
  const release = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.stdin.end()
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let buf = ''
      const timer = setTimeout(() => reject(new Error(`idle client did not report in ${timeoutS + 30} s`)), (timeoutS + 30) * 1000)
      child.stdout.on('data', (c: Buffer) => {
        buf += c.toString()
        const nl = buf.indexOf('\n')
        if (nl !== -1) {
          clearTimeout(timer)
          resolve(buf.slice(0, nl))
        }
      })
      child.on('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`idle client exited with ${code}: ${out.trim()}`))
      })
    })
    const r = JSON.parse(line) as { open: number; failed: number; attempted: number }
    return { ...r, release }
  } catch (err) {
    await release()
    throw err
  }
}
