import { getHeader, parseHttpDate } from '@edgestack/common'
import type { CacheObject } from './cache-object.js'

/**
 * Fields never stored with an object: recomputed on every delivery or owned by the framing.
 * An upstream Via stays: ours is appended after it (RFC 9110 §7.6.3), as varnishd does.
 */
const NOT_STORED = new Set(['age', 'content-length', 'x-varnish'])

/** The stored response fields, as the object keeps them. */
export function storableHeaders(headers: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    if (!NOT_STORED.has(name.toLowerCase())) out.push(name, headers[i + 1] as string)
  }
  return out
}

/**
 * Every delivery of a stored object starts from this list (built once per object): varnishd's
 * cnt_deliver forces `Accept-Ranges: bytes` on a 200 before vcl_deliver (a backend's own
 * Accept-Ranges gives way), and leaves other statuses alone.
 */
export function deliverHeadersOf(obj: CacheObject): string[] {
  obj.deliverHeaders ??= obj.status === 200 ? withAcceptRanges(obj.headers) : obj.headers
  return obj.deliverHeaders
}

/** `headers` with one `Accept-Ranges: bytes` at the end (http_ForceHeader). */
function withAcceptRanges(headers: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    if (name.length !== 13 || name.toLowerCase() !== 'accept-ranges') out.push(name, headers[i + 1] as string)
  }
  out.push('Accept-Ranges', 'bytes')
  return out
}

/**
 * RFC 9110 §13.1: answer 304 to a GET/HEAD whose validators match the stored object, as
 * varnishd does on a hit (If-None-Match first, then If-Modified-Since).
 */
export function notModified(req: readonly string[], obj: CacheObject): boolean {
  if (obj.status !== 200) return false
  const inm = getHeader(req, 'if-none-match')
  if (inm !== undefined) {
    if (obj.etag === undefined) return false
    if (inm.trim() === '*') return true
    const tag = weak(obj.etag)
    for (const t of inm.split(',')) if (weak(t.trim()) === tag) return true
    return false
  }
  const ims = getHeader(req, 'if-modified-since')
  if (ims !== undefined && obj.lastModified !== undefined) {
    const since = parseHttpDate(ims)
    const lm = parseHttpDate(obj.lastModified)
    return since !== undefined && lm !== undefined && lm <= since
  }
  return false
}

function weak(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag
}

/** RFC2616_Weaken_Etag: an answer whose bytes are not the stored ones has a weak ETag. */
export function weakenedEtag(tag: string): string {
  return tag.startsWith('W/') ? tag : `W/${tag}`
}

/**
 * Whether the request carries Range, If-Range, If-None-Match or If-Modified-Since: one pass
 * that compares lengths first, so the usual hit lower-cases no field name at all.
 */
export function hasConditionalOrRange(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    switch (name.length) {
      case 5:
        if (name.toLowerCase() === 'range') return true
        break
      case 8:
        if (name.toLowerCase() === 'if-range') return true
        break
      case 13:
        if (name.toLowerCase() === 'if-none-match') return true
        break
      case 17:
        if (name.toLowerCase() === 'if-modified-since') return true
        break
    }
  }
  return false
}
