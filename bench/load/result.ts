/** One measurement by any load generator or bench client. */
export interface LoadResult {
  /** Requests, handshakes or messages per second, as the scenario's unit says. */
  rate: number
  bytesPerSec: number
  p50Ms: number | null
  p99Ms: number | null
  count: number
  /** Socket errors and timeouts. */
  errors: number
  /** Answers that were not 2xx or 3xx. */
  non2xx: number
}

export interface HttpLoad {
  url: string
  connections: number
  durationS: number
  headers?: Record<string, string>
  cpus: string | undefined
}

/** Why a measurement cannot be trusted, or undefined when it can. */
export function loadProblem(r: LoadResult): string | undefined {
  if (r.count === 0) return 'no request completed'
  const bad = r.errors + r.non2xx
  if (bad > r.count * 0.01) return `${r.errors} socket errors and ${r.non2xx} non-2xx answers in ${r.count}`
  return undefined
}
