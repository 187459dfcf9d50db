import { getHeader, parseHttpDate } from '@edgestack/common'
import { fieldOf } from './policy.js'

/** What a client's Range asks of a 200 response: all of it, one slice, or nothing (416). */
export type RangePlan = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' }

const FULL: RangePlan = { kind: 'full' }
const UNSATISFIABLE: RangePlan = { kind: 'unsatisfiable' }

/**
 * varnishd 7.1's range delivery (cache_range.c, http_range_support on) for a response of
 * `length` bytes, undefined while a body without Content-Length still arrives. One
 * `bytes=first-last`, `bytes=first-` or `bytes=-suffix` is served; whatever else varnishd
 * cannot parse (several ranges, no `=`, first > last, `bytes=-0`, trailing bytes) is a 416,
 * as is a first byte past the end. An unknown length gets the whole body. Stricter than
 * varnishd (which answers 416): a unit other than `bytes` is ignored, as RFC 9110 §14.2
 * requires of the server that makes the response.
 */
function planRange(range: string, length: number | undefined): RangePlan {
  const eq = range.indexOf('=')
  if (eq === -1) return UNSATISFIABLE
  if (range.slice(0, eq).trim().toLowerCase() !== 'bytes') return FULL
  if (eq !== 5) return UNSATISFIABLE
  let i = eq + 1
  const firstStart = i
  while (isDigit(range.charCodeAt(i))) i++
  const first = i === firstStart ? -1 : Number(range.slice(firstStart, i))
  if (first > Number.MAX_SAFE_INTEGER || range.charCodeAt(i) !== 0x2d) return UNSATISFIABLE
  const lastStart = ++i
  while (isDigit(range.charCodeAt(i))) i++
  let last = i === lastStart ? -1 : Number(range.slice(lastStart, i))
  if (last > Number.MAX_SAFE_INTEGER || (first === -1 && last <= 0) || (last >= 0 && last < first)) return UNSATISFIABLE
  // varnishd skips trailing linear white space (vct_islws), then wants the end.
  while (i < range.length && isLws(range.charCodeAt(i))) i++
  if (i !== range.length) return UNSATISFIABLE
  if (length === undefined) return FULL
  let start = first
  if (first === -1) {
    start = Math.max(0, length - last)
    last = length - 1
  } else if (last === -1 || last >= length) last = length - 1
  if (start >= length) return UNSATISFIABLE
  return { kind: 'partial', start, end: last }
}

/**
 * varnishd's vrg_ifrange (RFC 9110 §13.1.5): whether a Range is honoured given If-Range and
 * the response's fields. A strong ETag must equal the response's strong ETag; a date must
 * equal Last-Modified, which must be at most 60 s newer than Date. Anything else: the whole body.
 */
function ifRangeHolds(ifRange: string | undefined, resp: readonly string[]): boolean {
  if (ifRange === undefined) return true
  if (ifRange.startsWith('W/')) return false
  if (ifRange.startsWith('"')) {
    const etag = getHeader(resp, 'etag')
    return etag !== undefined && !etag.startsWith('W/') && etag === ifRange
  }
  const since = parseHttpDate(ifRange)
  const date = parseHttpDate(getHeader(resp, 'date') ?? '')
  const lastModified = parseHttpDate(getHeader(resp, 'last-modified') ?? '')
  if (since === undefined || date === undefined || lastModified === undefined) return false
  return lastModified <= date + 60_000 && lastModified === since
}

/** The plan for a request's Range and If-Range against a 200 response; undefined without Range. */
export function rangeFor(req: readonly string[], resp: readonly string[], length: number | undefined): RangePlan | undefined {
  const range = fieldOf(req, 'range')
  if (range === undefined || !ifRangeHolds(fieldOf(req, 'if-range'), resp)) return undefined
  return planRange(range, length)
}

/** A Content-Length made only of digits, as a number; undefined otherwise. */
export function lengthOf(headers: readonly string[]): number | undefined {
  const value = getHeader(headers, 'content-length')?.trim()
  if (value === undefined || !DIGITS.test(value)) return undefined
  return Number(value)
}

/**
 * The response head for `plan` (206 or 416): status, reason and fields, with Content-Length
 * and Content-Range as varnishd writes them. 7.1's reason for 416 is still RFC 2616's.
 */
export function rangedHead(
  plan: Exclude<RangePlan, { kind: 'full' }>,
  headers: readonly string[],
  length: number | undefined,
): { status: number; reason: string; headers: string[] } {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    // A stored 200 may carry the origin's Content-Range (RFC 9110 §14.4 gives it no meaning
    // there): the part's own replaces it, never stands beside it.
    const lower = name.length === 13 || name.length === 14 ? name.toLowerCase() : ''
    if (lower !== 'content-length' && lower !== 'content-range') out.push(name, headers[i + 1] as string)
  }
  if (plan.kind === 'unsatisfiable') {
    if (length !== undefined) out.push('Content-Range', `bytes */${length}`)
    out.push('Content-Length', '0')
    return { status: 416, reason: 'Requested Range Not Satisfiable', headers: out }
  }
  out.push('Content-Range', `bytes ${plan.start}-${plan.end}/${length}`, 'Content-Length', String(plan.end - plan.start + 1))
  return { status: 206, reason: 'Partial Content', headers: out }
}

/** Cuts a body arriving in chunks down to bytes `start`..`end` (inclusive). */
export class RangeSlicer {
  readonly #start: number
  readonly #end: number
  #offset = 0

  constructor(start: number, end: number) {
    this.#start = start
    this.#end = end
  }

  /** Every byte of the range went out: the rest of the body is not wanted. */
  get done(): boolean {
    return this.#offset > this.#end
  }

  /**
   * The part of a streamed chunk to write, or undefined when there is none to write: once the
   * range is out `res` is ended (with the last part) and the rest of the body is dropped, as
   * varnishd reads and drops it.
   */
  partOf(chunk: Buffer, res: { end(chunk?: Buffer): unknown }): Buffer | undefined {
    if (this.done) return undefined
    const part = this.take(chunk)
    if (!this.done) return part
    res.end(part)
    return undefined
  }

  /** The part of `chunk` inside the range (possibly empty). */
  take(chunk: Buffer): Buffer {
    const from = this.#offset
    this.#offset += chunk.length
    const a = Math.max(0, this.#start - from)
    const b = Math.min(chunk.length, this.#end + 1 - from)
    return b <= a ? EMPTY : chunk.subarray(a, b)
  }
}

const EMPTY = Buffer.alloc(0)
const DIGITS = /^\d+$/

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

/** varnish's vct_islws: space, tab, CR, LF. */
function isLws(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a
}
