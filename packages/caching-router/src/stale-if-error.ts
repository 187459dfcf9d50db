import type { CacheObject } from './cache-object.js'

/**
 * Whether a stale copy stands in for a fetch that failed: within grace (varnishd), or within
 * RFC 5861's `stale-if-error` window (ours; must-revalidate zeroes both, see ttl.ts).
 */
export function standsInForError(stale: CacheObject | undefined, nowMs: number): stale is CacheObject {
  return stale?.state === 'complete' && stale.ttlLeft(nowMs) + Math.max(stale.grace, stale.staleIfError) > 0
}
