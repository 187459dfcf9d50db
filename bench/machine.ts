import { readFile } from 'node:fs/promises'
import os from 'node:os'
import type { Programs } from './groups.js'
import type { HttpLoadGenerator } from './load/http-load.js'
import { capture } from './procs.js'

export interface Machine {
  cores: number
  cpuModel: string
  memoryGiB: number
  kernel: string
  node: string
  versions: Record<string, string>
  loadGenerator: string
  /** taskset CPU lists, or undefined when not pinned. */
  serverCpus: string | undefined
  loadCpus: string | undefined
}

/** The CPUs this process may run on, from Cpus_allowed_list (cgroups may hide some). */
async function allowedCpus(): Promise<number[]> {
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '')
  const line = status.split('\n').find((l) => l.startsWith('Cpus_allowed_list:'))
  if (!line) return os.cpus().map((_, i) => i)
  const out: number[] = []
  for (const part of line.slice('Cpus_allowed_list:'.length).trim().split(',')) {
    const [a, b] = part.split('-').map(Number)
    if (a === undefined || Number.isNaN(a)) continue
    for (let c = a; c <= (b ?? a); c++) out.push(c)
  }
  return out
}

/**
 * Servers on the first half of the CPUs, the load generator on the rest, so neither steals
 * the other's core; with one CPU (or no taskset) nothing is pinned.
 */
export async function cpuSplit(): Promise<{ serverCpus: string | undefined; loadCpus: string | undefined }> {
  const cpus = await allowedCpus()
  const { code } = await capture('taskset', ['-c', String(cpus[0] ?? 0), 'true'])
  if (cpus.length < 2 || code !== 0) return { serverCpus: undefined, loadCpus: undefined }
  const half = Math.ceil(cpus.length / 2)
  return { serverCpus: cpus.slice(0, half).join(','), loadCpus: cpus.slice(half).join(',') }
}

async function firstLine(cmd: string, args: string[], pattern: RegExp): Promise<string> {
  const { out } = await capture(cmd, args)
  return pattern.exec(out)?.[1] ?? 'unknown'
}

export async function describeMachine(
  programs: Programs,
  gen: HttpLoadGenerator,
  split: { serverCpus: string | undefined; loadCpus: string | undefined },
): Promise<Machine> {
  const versions: Record<string, string> = {}
  if (programs.path.nginx) versions.nginx = await firstLine(programs.path.nginx, ['-v'], /nginx\/(\S+)/)
  if (programs.path.varnishd) versions.varnishd = await firstLine(programs.path.varnishd, ['-V'], /varnish-(\S+)/)
  if (programs.path.stunnel) versions.stunnel = await firstLine(programs.path.stunnel, ['-version'], /stunnel (\d\S*)/)
  versions.openssl = await firstLine('openssl', ['version'], /OpenSSL (\S+)/)
  return {
    cores: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    versions,
    loadGenerator: `${gen.name} ${gen.version}`,
    ...split,
  }
}
