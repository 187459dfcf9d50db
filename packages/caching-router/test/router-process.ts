import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

/** The router's CLI as built. */
export const ROUTER_CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url))

export interface RouterProcess {
  child: ChildProcess
  port: number
  /** stdout and stderr so far. */
  output(): string
  stop(): Promise<void>
}

/**
 * `caching-router ARGS` as a real process (`command` wraps it, e.g. in `bash -c 'ulimit ...'`),
 * ready once it logs `listening on HOST:PORT`; rejects with its output when it exits first.
 */
export async function spawnRouter(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; shell?: (cli: string) => string } = {},
): Promise<RouterProcess> {
  const node = process.execPath
  const quoted = [node, ROUTER_CLI, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')
  const child = opts.shell
    ? spawn('bash', ['-c', opts.shell(quoted)], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(node, [ROUTER_CLI, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.setEncoding('utf8').on('data', (c: string) => {
    out += c
  })
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    out += c
  })
  const exited = once(child, 'exit')
  const port = await new Promise<number>((resolve, reject) => {
    // Cleared once listening: a router that serves longer than this must not be killed. A bound,
    // not a measurement: with --workers on a loaded two-core machine start-up has taken over
    // 10 s. The manager killed, its child stops on its own (obeyManager).
    const limit = setTimeout(() => {
      clearInterval(timer)
      child.kill('SIGKILL')
      reject(new Error(`caching-router not listening after 30 s:\n${out}`))
    }, 30_000).unref()
    const timer = setInterval(() => {
      const m = /listening on [^\s]+:(\d+)/.exec(out)
      if (m) {
        clearInterval(timer)
        clearTimeout(limit)
        resolve(Number(m[1]))
      }
    }, 20)
    void exited.then(() => {
      clearInterval(timer)
      clearTimeout(limit)
      reject(new Error(`caching-router exited before listening:\n${out}`))
    })
  })
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
  return { child, port, output: () => out, stop }
}
