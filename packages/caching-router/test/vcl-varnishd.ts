import { execFile, spawn } from 'node:child_process'
import { access, chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

// The real varnishd for the differential tests: started in the foreground on 127.0.0.1:0 with
// one VCL, found through varnishadm, stopped with SIGTERM.

export const VARNISHD = '/usr/sbin/varnishd'
export const VARNISHADM = '/usr/bin/varnishadm'

export const varnishInstalled = await Promise.all([access(VARNISHD), access(VARNISHADM)]).then(
  () => true,
  () => false,
)

export interface RunningVarnishd {
  readonly port: number
  /** The ports of the `-a` listeners in order (`port` is the first). */
  readonly ports: readonly number[]
  readonly workdir: string
  stop(): Promise<void>
}

/** A work directory varnishd (root, compiling as its own unprivileged user) can use. */
export async function varnishWorkdir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  await chmod(dir, 0o755)
  return dir
}

/**
 * `extra`: more varnishd arguments (`-p feature=+http2`, `-a 127.0.0.1:0,PROXY`); each extra
 * `-a` listener's port follows the first in `ports`.
 */
export async function startVarnishd(vclText: string, extra: readonly string[] = []): Promise<RunningVarnishd> {
  const listeners = 1 + extra.filter((a) => a === '-a').length
  const workdir = await varnishWorkdir('vcl-varnishd-')
  const file = join(workdir, 'test.vcl')
  await writeFile(file, vclText)
  const child = spawn(VARNISHD, ['-F', '-n', workdir, '-a', '127.0.0.1:0', '-T', '127.0.0.1:0', '-f', file, '-s', 'malloc,16m', ...extra], { stdio: 'ignore' })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await exited
    }
    await rm(workdir, { recursive: true, force: true })
  }
  let ports: number[] = []
  // Bounded wait: varnishadm answers once the child process runs.
  for (let i = 0; i < 100 && ports.length < listeners && child.exitCode === null; i++) {
    const out = await new Promise<string>((resolve) => {
      execFile(VARNISHADM, ['-n', workdir, 'debug.listen_address'], { timeout: 10_000 }, (_err, stdout) => resolve(stdout ?? ''))
    })
    ports = [...out.matchAll(/127\.0\.0\.1 (\d+)/g)].map((m) => Number(m[1]))
    if (ports.length < listeners) await sleep(100)
  }
  if (ports.length < listeners) {
    await stop()
    throw new Error('varnishd did not start listening')
  }
  return { port: ports[0] as number, ports, workdir, stop }
}

/**
 * `skip` for a differential suite: false when varnishd is there, or when CI is set (the suite
 * then runs and fails on the missing program instead of passing unseen); a loud reason otherwise.
 */
export const skipWithoutVarnishd: false | string =
  varnishInstalled || process.env.CI ? false : 'varnishd/varnishadm not installed (with CI set this fails instead)'
