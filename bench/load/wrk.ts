import { capture } from '../procs.js'
import type { HttpLoad, LoadResult } from './result.js'

/** Runs wrk, one thread per load-generator CPU it is pinned to, and parses `--latency`. */
export async function runWrk(load: HttpLoad): Promise<LoadResult> {
  const threads = Math.max(1, Math.min(load.connections, load.cpus === undefined ? 1 : load.cpus.split(',').length))
  const args = [`-t${threads}`, `-c${load.connections}`, `-d${load.durationS}s`, '--timeout', '5s', '--latency']
  for (const [k, v] of Object.entries(load.headers ?? {})) args.push('-H', `${k}: ${v}`)
  args.push(load.url)
  const [cmd, argv] = load.cpus === undefined ? ['wrk', args] : ['taskset', ['-c', load.cpus, 'wrk', ...args]]
  const { code, out } = await capture(cmd, argv, (load.durationS + 30) * 1000)
  if (code !== 0) throw new Error(`wrk exited with ${code}: ${out.trim()}`)
  return parseWrk(out)
}

const UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }
const TIME_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Parses wrk 4's report; throws when a line it needs is missing, rather than reporting zeros. */
export function parseWrk(out: string): LoadResult {
  const rate = /^Requests\/sec:\s+([\d.]+)/m.exec(out)
  const transfer = /^Transfer\/sec:\s+([\d.]+)([KMGT]?B)/m.exec(out)
  const total = /^\s*(\d+) requests in /m.exec(out)
  if (!rate || !transfer || !total) throw new Error(`cannot read wrk's output:\n${out}`)
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)
  return {
    rate: Number(rate[1]),
    bytesPerSec: Number(transfer[1]) * (UNITS[transfer[2] as string] ?? 1),
    p50Ms: percentile(out, '50'),
    p99Ms: percentile(out, '99'),
    count: Number(total[1]),
    errors: errors ? errors.slice(1).reduce((s, n) => s + Number(n), 0) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  }
}

function percentile(out: string, p: string): number | null {
  const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(out)
  return m ? Number(m[1]) * (TIME_MS[m[2] as string] ?? 1) : null
}
