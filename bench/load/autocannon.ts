import { fileURLToPath } from 'node:url'
import { capture } from '../procs.js'
import type { HttpLoad, LoadResult } from './result.js'

const AUTOCANNON = fileURLToPath(new URL('../../../node_modules/autocannon/autocannon.js', import.meta.url))

/** The fallback when wrk is not installed: autocannon's CLI in its own (pinned) process. */
export async function runAutocannon(load: HttpLoad): Promise<LoadResult> {
  const args = [AUTOCANNON, '-c', String(load.connections), '-d', String(load.durationS), '-j']
  for (const [k, v] of Object.entries(load.headers ?? {})) args.push('-H', `${k}=${v}`)
  args.push(load.url)
  const [cmd, argv] =
    load.cpus === undefined ? [process.execPath, args] : ['taskset', ['-c', load.cpus, process.execPath, ...args]]
  // The bench certificate is self-signed; verification is not what is measured.
  const env = { ...process.env, NODE_TLS_REJECT_UNAUTHORIZED: '0' }
  const { code, out } = await capture(cmd, argv, (load.durationS + 30) * 1000, env)
  if (code !== 0) throw new Error(`autocannon exited with ${code}: ${out.trim()}`)
  const json = out.slice(out.indexOf('{'), out.lastIndexOf('}') + 1)
  const r = JSON.parse(json) as {
    requests: { average: number; total: number }
    throughput: { average: number }
    latency: { p50: number; p99: number }
    errors: number
    timeouts: number
    non2xx: number
  }
  return {
    rate: r.requests.average,
    bytesPerSec: r.throughput.average,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    count: r.requests.total,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  }
}
