import { parseHttpDate } from '@edgestack/common'

/**
 * beresp.ttl / grace / keep as varnishd computes them before vcl_backend_response
 * (varnish-cache `rfc2616.c`, RFC2616_Ttl), with RFC 9111 where varnish is looser:
 * - Age (§5.1): the first member of a list, ignored when not a non-negative integer.
 * - Expires (§5.3): an invalid date, "0" included, means already expired; ignored when
 *   max-age or s-maxage is present. Dates are read by common's strict parseHttpDate (never
 *   Date.parse, which reads local time and takes invalid forms).
 * - Any status is storable with explicit freshness or `public` (§3); heuristic freshness
 *   (default_ttl) only for the statuses §4.2.2 allows it (varnishd's list, which also leaves
 *   302/307 to explicit freshness) or with `public`.
 * - An Expires of the epoch is expired; varnishd reads a parsed 0 as "no Expires".
 * - must-revalidate and proxy-revalidate forbid serving stale (§4.2.4): grace 0.
 * - no-cache without field names (§5.2.2.4): stored, but always revalidated (ttl 0, kept for
 *   a conditional request when it has a validator).
 * - stale-while-revalidate sets grace, stale-if-error how long a stale copy may stand in for
 *   a failed fetch (RFC 5861).
 */

import { deltaSeconds } from './delta-seconds.js'
import { targetedDirectives } from './targeted-cache-control.js'

export interface TtlDefaults {
  defaultTtl: number
  defaultGrace: number
  defaultKeep: number
  /** RFC 9213's target list, lower case (`targeted_cache_control`); empty: none. */
  targets?: readonly string[]
}

export interface Freshness {
  ttl: number
  grace: number
  keep: number
  /** Seconds past ttl a stale copy may replace a failed fetch (stale-if-error). */
  staleIfError: number
  /** Seconds the response had already aged (Age, or Date in the past) when it arrived. */
  age: number
  /** A targeted field (RFC 9213) decided: Cache-Control and Expires were not consulted. */
  targeted: boolean
}

const HEURISTIC = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501])

export function computeFreshness(status: number, headers: readonly string[], nowMs: number, d: TtlDefaults): Freshness {
  let cacheControl = ''
  let expires: string | undefined
  let date: string | undefined
  let ageText: string | undefined
  let hasValidator = false
  for (let i = 0; i < headers.length; i += 2) {
    const name = (headers[i] as string).toLowerCase()
    const value = headers[i + 1] as string
    if (name === 'cache-control') cacheControl = cacheControl ? `${cacheControl},${value}` : value
    else if (name === 'expires') expires ??= value
    else if (name === 'date') date ??= value
    else if (name === 'age') ageText ??= value
    else if (name === 'etag' || name === 'last-modified') hasValidator = true
  }
  // RFC 9213 §2.2: a valid targeted field replaces Cache-Control and Expires for this cache.
  const targeted = d.targets !== undefined && d.targets.length > 0 ? targetedDirectives(headers, d.targets) : undefined
  if (targeted !== undefined) expires = undefined
  const cc = targeted ?? parseCacheControl(cacheControl)
  const age = parseAge(ageText)
  const out: Freshness = { ttl: -1, grace: d.defaultGrace, keep: d.defaultKeep, staleIfError: 0, age, targeted: targeted !== undefined }
  const swr = cc.get('stale-while-revalidate')
  if (swr !== undefined && swr >= 0) out.grace = swr
  const sie = cc.get('stale-if-error')
  if (sie !== undefined && sie >= 0) out.staleIfError = sie
  if (cc.has('must-revalidate') || cc.has('proxy-revalidate')) {
    out.grace = 0
    out.staleIfError = 0
  }

  // RFC 9111 §3: any final status is storable with explicit freshness (max-age, s-maxage,
  // Expires) or `public`; §4.2.2: heuristic freshness only for the heuristically cacheable
  // statuses, or with `public`. varnishd (RFC2616_Ttl) stores its fixed list only. This is
  // the one place that decides, so builtin.vcl (ttl <= 0: hit-for-miss) follows for -b and -f.
  const explicit = cc.has('s-maxage') || cc.has('max-age') || expires !== undefined
  const heuristic = HEURISTIC.has(status) || status === 304 || cc.has('public')
  if (!explicit && !heuristic) return out
  const sMaxAge = cc.get('s-maxage')
  const maxAge = cc.get('max-age')
  // RFC 9111 §4.2.1: a response with invalid freshness information (a max-age or s-maxage
  // that is not delta-seconds, e.g. `max-age=1.5`, `max-age=0.0`, `max-age=-1`) is treated
  // as stale, not as one without freshness information (which would get the heuristic TTL).
  if (sMaxAge !== undefined) out.ttl = Number.isNaN(sMaxAge) ? 0 : sMaxAge - age
  else if (maxAge !== undefined) out.ttl = Number.isNaN(maxAge) ? 0 : maxAge - age
  else if (expires !== undefined) {
    const exp = parseHttpDate(expires, nowMs)
    if (exp === undefined) out.ttl = -1
    else {
      const base = (date === undefined ? undefined : parseHttpDate(date, nowMs)) ?? nowMs
      out.ttl = Math.floor((exp - base) / 1000) - age
    }
  } else if (!heuristic) out.ttl = -1
  else out.ttl = d.defaultTtl - age
  if (cc.get('no-cache') === 0) {
    // Stored so a conditional fetch can refresh it, never served without one.
    out.ttl = hasValidator ? 0 : -1
    out.grace = 0
    out.keep = Math.max(out.keep, 3600)
  }
  // builtin.vcl reads no-store and private in Cache-Control itself; from a targeted field
  // they are ours to apply (RFC 9111 §5.2.2.5, §5.2.2.7: a shared cache does not store).
  if (targeted !== undefined && (cc.has('no-store') || cc.has('private'))) out.ttl = -1
  return out
}

/** Directive -> seconds (0 for a directive without a value, NaN for a bad value). */
export function parseCacheControl(value: string): Map<string, number> {
  const out = new Map<string, number>()
  if (value === '') return out
  for (const part of value.split(',')) {
    const eq = part.indexOf('=')
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase()
    if (name === '') continue
    if (eq === -1) {
      if (!out.has(name)) out.set(name, 0)
      continue
    }
    let arg = part.slice(eq + 1).trim()
    if (arg.startsWith('"') && arg.endsWith('"') && arg.length >= 2) arg = arg.slice(1, -1)
    // `no-cache="Set-Cookie"` names fields; it is not the unqualified directive.
    // RFC 9111 §5.2: recipients accept the quoted form of an argument too.
    // §4.2.1: of a directive given twice, the first occurrence is used.
    if (!out.has(name)) out.set(name, deltaSeconds(arg))
  }
  return out
}


/** RFC 9111 §5.1: delta-seconds; a list takes its first member; anything else is ignored. */
export function parseAge(value: string | undefined): number {
  if (value === undefined) return 0
  const comma = value.indexOf(',')
  const n = deltaSeconds((comma === -1 ? value : value.slice(0, comma)).trim())
  // §5.1: an Age that is not a non-negative integer is ignored.
  return Number.isNaN(n) ? 0 : n
}
