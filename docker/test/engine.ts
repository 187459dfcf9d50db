import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { open, readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'

/** Runs a command to completion, bounded by `timeoutMs`; rejects with its stderr on failure. */
export function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs: number; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: opts.env, cwd: opts.cwd },
      (err, stdout, stderr) => {
        if (err) {
          const why = err.killed ? `killed after ${opts.timeoutMs} ms` : `exit ${String(err.code)}`
          reject(new Error(`${cmd} ${args.join(' ')}: ${why}\n${stderr || stdout}`.trimEnd()))
        } else {
          resolve(stdout)
        }
      },
    )
  })
}

const succeeds = (cmd: string, args: string[], timeoutMs = 20_000) =>
  run(cmd, args, { timeoutMs }).then(
    () => true,
    () => false,
  )

/** `docker compose` (v2 plugin) when the CLI has it, else Debian's `docker-compose` (1.29). */
export async function composeCommand(): Promise<string[]> {
  if (await succeeds('docker', ['compose', 'version'])) return ['docker', 'compose']
  if (await succeeds('docker-compose', ['version'])) return ['docker-compose']
  throw new Error('neither `docker compose` nor `docker-compose` is installed')
}

/**
 * Makes sure Debian's docker engine, docker-compose and debootstrap are installed (as root,
 * with apt-get) and that dockerd answers. Returns a function that stops dockerd again when
 * this call had to start it, so the test leaves the machine as it found it.
 */
export async function ensureDockerEngine(logFile: string, note: (msg: string) => void): Promise<() => Promise<void>> {
  const missing: string[] = []
  if (!(await succeeds('sh', ['-c', 'command -v dockerd']))) missing.push('docker.io')
  if (!(await succeeds('sh', ['-c', 'command -v docker-compose || docker compose version']))) missing.push('docker-compose')
  if (!(await succeeds('sh', ['-c', 'command -v debootstrap']))) missing.push('debootstrap')
  if (missing.length > 0) {
    if (process.getuid?.() !== 0) throw new Error(`${missing.join(', ')} missing, and installing needs root`)
    note(`installing ${missing.join(' ')} with apt-get`)
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    const install = () =>
      run('apt-get', ['install', '-y', '-qq', ...missing], { timeoutMs: 10 * 60_000, env })
    await install().catch(async () => {
      await run('apt-get', ['update', '-qq'], { timeoutMs: 5 * 60_000, env })
      await install()
    })
  }

  if (await succeeds('docker', ['info'])) return async () => {}

  note(`starting dockerd (log: ${logFile})`)
  const log = await open(logFile, 'a')
  const dockerd: ChildProcess = spawn('dockerd', [], { stdio: ['ignore', log.fd, log.fd], detached: true })
  await log.close()
  let exited = false
  const exit = new Promise<void>((resolve) => {
    dockerd.once('exit', () => {
      exited = true
      resolve()
    })
    dockerd.once('error', () => {
      exited = true
      resolve()
    })
  })
  const stop = async () => {
    if (exited) return
    dockerd.kill('SIGTERM')
    // dockerd stops its containerd and containers first; bounded, then killed.
    const ended = await Promise.race([exit.then(() => true), sleep(30_000, false, { ref: false })])
    if (!ended) {
      dockerd.kill('SIGKILL')
      await exit
    }
  }
  for (let i = 0; i < 60 && !exited; i++) {
    if (await succeeds('docker', ['info'], 5_000)) return stop
    await sleep(1_000)
  }
  await stop()
  const tail = (await readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n')
  throw new Error(`dockerd did not come up in 60 s; the end of ${logFile}:\n${tail}`)
}
