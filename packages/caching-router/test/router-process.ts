import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

/** How long spawnRouter waits for `listening on` before it kills the router. */
export const START_TIMEOUT_MS = 10_000

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
    // The bound on start-up must end with start-up: left armed, it SIGKILLed every manager
    // START_TIMEOUT_MS after its start, under whatever test was still using it (a replacement
    // child then found its manager gone: ERR_IPC_CHANNEL_CLOSED, EPIPE, "manager gone").
    const settle = () => {
      clearInterval(poll)
      clearTimeout(bound)
    }
    const poll = setInterval(() => {
      const m = /listening on [^\s]+:(\d+)/.exec(out)
      if (m) {
        settle()
        resolve(Number(m[1]))
      }
    }, 20)
    void exited.then(() => {
      settle()
      reject(new Error(`caching-router exited before listening:\n${out}`))
    })
    const bound = setTimeout(() => {
      settle()
      child.kill('SIGKILL')
      reject(new Error(`caching-router not listening after ${START_TIMEOUT_MS / 1000} s:\n${out}`))
    }, START_TIMEOUT_MS)
    bound.unref()
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
