import type { CacheObject } from './cache-object.js'

/**
 * Revalidating a kept object (varnishd's beresp.keep, RFC 9111 §4.3), as undici's
 * cache-revalidation-handler: the fill asks conditionally with the kept object's validators,
 * and a 304 answer is the kept object with the 304's fields.
 */

// RFC 9111 §3.2: a 304 never updates these of the stored response.
const NOT_FROM_304 = new Set(['content-length', 'content-encoding', 'transfer-encoding', 'content-range'])

/** RFC 9110 §13.1.1/§13.1.3: the kept object's validators, on the fill's request. */
export function addConditionals(bereqHeaders: string[], stale: CacheObject): void {
  if (stale.etag !== undefined) bereqHeaders.push('If-None-Match', stale.etag)
  if (stale.lastModified !== undefined) bereqHeaders.push('If-Modified-Since', stale.lastModified)
}

/** A 304 that answers `stale`'s conditional request: the kept object's body can be reused. */
export function revalidates(status: number, stale: CacheObject | undefined): stale is CacheObject & { body: Buffer } {
  return status === 304 && stale?.body !== undefined
}

/** RFC 9111 §4.3.4: the kept object's fields, those the 304 carries replacing its own. */
export function merge304(stored: readonly string[], fresh: readonly string[]): string[] {
  const replaced = new Set<string>()
  for (let i = 0; i < fresh.length; i += 2) {
    const n = (fresh[i] as string).toLowerCase()
    if (!NOT_FROM_304.has(n)) replaced.add(n)
  }
  const out: string[] = []
  for (let i = 0; i < stored.length; i += 2) {
    if (!replaced.has((stored[i] as string).toLowerCase())) out.push(stored[i] as string, stored[i + 1] as string)
  }
  for (let i = 0; i < fresh.length; i += 2) {
    if (replaced.has((fresh[i] as string).toLowerCase())) out.push(fresh[i] as string, fresh[i + 1] as string)
  }
  return out
}
