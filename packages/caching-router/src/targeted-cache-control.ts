import { deltaSeconds } from './delta-seconds.js'

/**
 * Targeted cache control (RFC 9213): a response's CDN-Cache-Control (or another field of the
 * `targeted_cache_control` list) steers this cache instead of Cache-Control and Expires.
 * §2.1: each targeted field is an RFC 8941 Dictionary; an empty one, or one that fails to
 * parse, is ignored as a whole. §2.2: the first field of the list with a valid, non-empty
 * value wins, and then Cache-Control and Expires are not consulted.
 *
 * The result is in parseCacheControl()'s shape: directive -> seconds, 0 for a bare directive
 * (a Boolean true), NaN for a value of another type (an Integer < 0, a Decimal such as
 * `max-age=1.5`, a String, a Token, an Inner List: `no-cache=("set-cookie")` is qualified).
 * A Boolean false (`private=?0`) is the directive's absence. Parameters are ignored (§2.1).
 */
export function targetedDirectives(headers: readonly string[], targets: readonly string[]): Map<string, number> | undefined {
  for (const target of targets) {
    let value: string | undefined
    for (let i = 0; i < headers.length; i += 2) {
      if ((headers[i] as string).toLowerCase() !== target) continue
      // RFC 8941 §4.2: the lines of a repeated field are joined with commas before parsing.
      value = value === undefined ? (headers[i + 1] as string) : `${value},${headers[i + 1] as string}`
    }
    if (value === undefined) continue
    const parsed = parseDictionary(value)
    if (parsed !== undefined && parsed.size > 0) return parsed
  }
  return undefined
}

/** RFC 8941 §4.2.2, reduced to what a cache directive needs; undefined on any parse error. */
function parseDictionary(input: string): Map<string, number> | undefined {
  const p = { s: input, i: 0 }
  const out = new Map<string, number>()
  skipSp(p)
  if (p.i === p.s.length) return out
  for (;;) {
    const key = parseKey(p)
    if (key === undefined) return undefined
    let value = 0
    let present = true
    if (p.s[p.i] === '=') {
      p.i++
      const item = parseItemOrInnerList(p)
      if (item === undefined) return undefined
      if (item === true) value = 0
      else if (item === false) present = false
      else value = item
    } else if (!skipParams(p)) return undefined
    // §4.2.2: a later duplicate key overwrites the earlier one.
    if (present) out.set(key, value)
    else out.delete(key)
    skipOws(p)
    if (p.i === p.s.length) return out
    if (p.s[p.i] !== ',') return undefined
    p.i++
    skipOws(p)
    if (p.i === p.s.length) return undefined // a trailing comma
  }
}

interface Cursor {
  s: string
  i: number
}

const KEY_START = /[a-z*]/
const KEY_CHAR = /[a-z0-9_\-.*]/
const TOKEN_START = /[A-Za-z*]/
const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/
const BASE64 = /[A-Za-z0-9+/=]/

function parseKey(p: Cursor): string | undefined {
  if (!KEY_START.test(p.s[p.i] ?? '')) return undefined
  const start = p.i
  while (p.i < p.s.length && KEY_CHAR.test(p.s[p.i] as string)) p.i++
  return p.s.slice(start, p.i)
}

/** An Item's or Inner List's value for a directive: a number of seconds, true/false, or NaN. */
function parseItemOrInnerList(p: Cursor): number | boolean | undefined {
  if (p.s[p.i] === '(') {
    p.i++
    for (;;) {
      skipSp(p)
      if (p.s[p.i] === ')') {
        p.i++
        return skipParams(p) ? Number.NaN : undefined
      }
      if (bareItem(p) === undefined || !skipParams(p)) return undefined
      const c = p.s[p.i]
      if (c !== ' ' && c !== ')') return undefined
    }
  }
  const v = bareItem(p)
  return v !== undefined && skipParams(p) ? v : undefined
}

function bareItem(p: Cursor): number | boolean | undefined {
  const c = p.s[p.i] ?? ''
  if (c === '-' || (c >= '0' && c <= '9')) {
    const m = /^-?\d{1,15}(\.\d{1,3})?/.exec(p.s.slice(p.i, p.i + 20))
    if (!m) return undefined
    p.i += m[0].length
    // Only a non-negative Integer is delta-seconds (RFC 9111 §1.2.2); RFC 9111 §4.2.1 makes
    // any other freshness value invalid, which the caller treats as stale.
    return m[1] === undefined && c !== '-' ? deltaSeconds(m[0]) : Number.NaN
  }
  if (c === '"') {
    for (p.i++; p.i < p.s.length; p.i++) {
      const ch = p.s.charCodeAt(p.i)
      if (ch === 0x5c) {
        const next = p.s[++p.i]
        if (next !== '"' && next !== '\\') return undefined
      } else if (ch === 0x22) {
        p.i++
        return Number.NaN
      } else if (ch < 0x20 || ch > 0x7e) return undefined
    }
    return undefined
  }
  if (c === '?') {
    const b = p.s[p.i + 1]
    if (b !== '0' && b !== '1') return undefined
    p.i += 2
    return b === '1'
  }
  if (c === ':') {
    const end = p.s.indexOf(':', p.i + 1)
    if (end === -1) return undefined
    for (let j = p.i + 1; j < end; j++) if (!BASE64.test(p.s[j] as string)) return undefined
    p.i = end + 1
    return Number.NaN
  }
  if (TOKEN_START.test(c)) {
    while (p.i < p.s.length && TOKEN_CHAR.test(p.s[p.i] as string)) p.i++
    return Number.NaN
  }
  return undefined
}

/** `;key[=item]` parameters: parsed for validity, then ignored (RFC 9213 §2.1). */
function skipParams(p: Cursor): boolean {
  while (p.s[p.i] === ';') {
    p.i++
    skipSp(p)
    if (parseKey(p) === undefined) return false
    if (p.s[p.i] === '=') {
      p.i++
      if (bareItem(p) === undefined) return false
    }
  }
  return true
}

function skipSp(p: Cursor): void {
  while (p.s[p.i] === ' ') p.i++
}

function skipOws(p: Cursor): void {
  while (p.s[p.i] === ' ' || p.s[p.i] === '\t') p.i++
}
