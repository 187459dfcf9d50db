import type { CacheObject } from './cache-object.js'

/**
 * Whether a stale copy stands in for a fetch that failed: within grace (varnishd), or within
 * RFC 5861's `stale-if-error` window (ours; must-revalidate zeroes both, see ttl.ts).
 */
export function standsInForError(stale: CacheObject | undefined, nowMs: number): stale is CacheObject {
  return stale?.state === 'complete' && stale.ttlLeft(nowMs) + Math.max(stale.grace, stale.staleIfError) > 0
}

/** RFC 5861 §4: the statuses that are an error for stale-if-error. */
export function isErrorStatus(status: number): boolean {
  return status === 500 || status === 502 || status === 503 || status === 504
}
