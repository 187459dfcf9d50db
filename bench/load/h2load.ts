import { capture } from '../procs.js'
import type { HttpLoad, LoadResult } from './result.js'

/**
 * nghttp2's h2load over h2c (prior knowledge): `-c` connections with `-m` streams each, for
 * `-D` seconds after a warm-up. h2load prints no percentiles, only min/max/mean: p50/p99 stay
 * empty rather than being made up from the mean.
 */
export async function runH2load(load: HttpLoad & { streams: number; warmupS: number }): Promise<LoadResult> {
  const threads = Math.max(1, Math.min(load.connections, load.cpus === undefined ? 1 : load.cpus.split(',').length))
  const args = [`-t${threads}`, `-c${load.connections}`, `-m${load.streams}`, `-D${load.durationS}`, `--warm-up-time=${Math.max(1, load.warmupS)}`]
  for (const [k, v] of Object.entries(load.headers ?? {})) args.push('-H', `${k}: ${v}`)
  args.push(load.url)
  const [cmd, argv] = load.cpus === undefined ? ['h2load', args] : ['taskset', ['-c', load.cpus, 'h2load', ...args]]
  const { code, out } = await capture(cmd, argv, (load.durationS + load.warmupS + 30) * 1000)
  if (code !== 0) throw new Error(`h2load exited with ${code}: ${out.trim().split('\n').slice(-3).join(' ')}`)
  return parseH2load(out)
}

const UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }

/** Parses h2load 1.5x's summary; throws when a line it needs is missing. */
export function parseH2load(out: string): LoadResult {
  const fin = /^finished in [\d.]+m?s, ([\d.]+) req\/s, ([\d.]+)([KMG]?B)\/s/m.exec(out)
  const req = /^requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m.exec(out)
  const codes = /^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m.exec(out)
  if (!fin || !req || !codes) throw new Error(`cannot read h2load's output:\n${out}`)
  return {
    rate: Number(fin[1]),
    bytesPerSec: Number(fin[2]) * (UNITS[fin[3] as string] ?? 1),
    p50Ms: null,
    p99Ms: null,
    count: Number(req[2]),
    errors: Number(req[5]) + Number(req[6]),
    non2xx: Number(codes[3]) + Number(codes[4]),
  }
}
