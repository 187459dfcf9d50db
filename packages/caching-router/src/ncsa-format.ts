import { clfNow, escapeLogValue, getHeader, UsageError } from '@edgestack/common'
import type { NcsaRecord } from './ncsa.js'

/** What a compiled format needs besides the record: the request's timing and its vxid. */
export interface NcsaTiming {
  /** `%D`/`%T`: seconds from the request head to the response's last byte. */
  seconds: number
  xid: number
}

type Piece = (r: NcsaRecord, t: NcsaTiming) => string

/**
 * varnishncsa's `-F FORMAT` (varnishncsa(1), bin/varnishncsa/varnishncsa.c parse_format),
 * compiled once at start into one closure a piece, and its `-j` (values escaped for JSON:
 * `\uXXXX` instead of `\xHH`, an absent value `""`-ready empty instead of `-`). An unknown
 * specifier is refused in varnishncsa's words. Specifiers whose data the router does not keep
 * for its log (`%I`, `%O`, `%{X}o`, `%{X}t`, `time_firstbyte`, `VCL_Log`, `VSL`) are refused
 * by name rather than written wrong.
 */
export function compileNcsaFormat(format: string, json: boolean): (r: NcsaRecord, t: NcsaTiming) => string {
  const esc = json ? escapeJson : escapeLogValue
  const absent = json ? '' : '-'
  const pieces: Piece[] = []
  let literal = ''
  const flush = () => {
    if (literal === '') return
    const text = literal
    pieces.push(() => text)
    literal = ''
  }
  for (let i = 0; i < format.length; i++) {
    const c = format[i] as string
    if (c === '\\' && (format[i + 1] === 'n' || format[i + 1] === 't')) {
      literal += format[i + 1] === 'n' ? '\n' : '\t'
      i++
      continue
    }
    if (c !== '%') {
      literal += c
      continue
    }
    const at = format.slice(i)
    let arg: string | undefined
    let j = i + 1
    if (format[j] === '{') {
      const end = format.indexOf('}', j)
      if (end === -1) throw new UsageError(`Unmatched bracket at: ${at}`)
      arg = format.slice(j + 1, end)
      j = end + 1
    }
    const spec = format[j]
    flush()
    pieces.push(piece(spec, arg, at, esc, absent))
    i = j
  }
  flush()
  return (r, t) => {
    let out = ''
    for (const p of pieces) out += p(r, t)
    return out
  }
}

function piece(spec: string | undefined, arg: string | undefined, at: string, esc: (s: string) => string, absent: string): Piece {
  const header = (name: string): Piece => {
    const lower = name.toLowerCase()
    return (r) => {
      const v = getHeader(r.headers, lower)
      return v === undefined ? absent : esc(v)
    }
  }
  if (arg !== undefined) {
    if (spec === 'i') return header(arg)
    if (spec === 'x') return extension(arg)
    if (spec === 'o' || spec === 't') throw new UsageError(`-F: %{${arg}}${spec} is not supported by caching-router (varnishncsa's; see the README)`)
    throw new UsageError(`Unknown format specifier at: ${at}`)
  }
  switch (spec) {
    case 'b':
      return (r) => (r.bytes > 0 ? String(r.bytes) : absent)
    case 'D':
      return (_r, t) => String(Math.floor(t.seconds * 1e6))
    case 'H':
      return (r) => esc(r.proto)
    case 'h':
      return (r) => r.client
    case 'l':
      // varnishncsa writes `-` here and for %u even with -j (only absent fields turn empty).
      return () => '-'
    case 'm':
      return (r) => esc(r.method)
    case 'q':
      return (r) => {
        const q = r.url.indexOf('?')
        return q === -1 ? '' : esc(r.url.slice(q))
      }
    case 'r':
      return (r) => {
        const target = requestTarget(r)
        return `${esc(r.method)} ${esc(target)} ${esc(r.proto)}`
      }
    case 's':
      return (r) => String(r.status)
    case 't':
      return () => `[${clfNow()}]`
    case 'T':
      return (_r, t) => String(Math.floor(t.seconds))
    case 'U':
      return (r) => {
        const q = r.url.indexOf('?')
        return esc(q === -1 ? r.url : r.url.slice(0, q))
      }
    case 'u':
      return (r) => {
        const user = basicUser(getHeader(r.headers, 'authorization'))
        return user === undefined ? '-' : esc(user)
      }
    case 'I':
    case 'O':
      throw new UsageError(`-F: %${spec} is not supported by caching-router (varnishncsa's; see the README)`)
    default:
      throw new UsageError(`Unknown format specifier at: ${at}`)
  }
}

/** %r's target: `http://` and the Host (varnishncsa's `localhost` without one) before an origin-form URL. */
export function requestTarget(r: NcsaRecord): string {
  if (!r.url.startsWith('/')) return r.url
  return `http://${getHeader(r.headers, 'host') ?? 'localhost'}${r.url}`
}

/** `%{Varnish:...}x`: the ones the router knows; the others by name. */
function extension(name: string): Piece {
  switch (name) {
    case 'Varnish:handling':
      return (r) => r.handling
    case 'Varnish:hitmiss':
      return (r) => (r.handling === 'hit' ? 'hit' : 'miss')
    case 'Varnish:side':
      return () => 'c'
    case 'Varnish:vxid':
      return (_r, t) => String(t.xid)
  }
  if (name === 'Varnish:time_firstbyte' || name.startsWith('VCL_Log:') || name.startsWith('VSL:')) {
    throw new UsageError(`-F: %{${name}}x is not supported by caching-router (varnishncsa's; see the README)`)
  }
  throw new UsageError(`Unknown formatting extension: ${name}`)
}

/** varnishncsa's %u: the user of `Authorization: Basic`, decoded up to its colon. */
function basicUser(auth: string | undefined): string | undefined {
  if (auth === undefined || auth.length < 6 || auth.slice(0, 6).toLowerCase() !== 'basic ') return undefined
  const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('latin1')
  const colon = decoded.indexOf(':')
  return colon === -1 ? decoded : decoded.slice(0, colon)
}

/**
 * VSB_quote with VSB_QUOTE_JSON (varnish-cache lib/libvarnish/vsb.c), which varnishncsa -j
 * uses: `"` and `\` get a backslash, tab, CR and LF read `\t`, `\r`, `\n`, other bytes below
 * 0x20 (and 0x7f) `\u00XX`; bytes above 0x7e are written as they are (UTF-8 stays UTF-8).
 */
export function escapeJson(value: string): string {
  let out = ''
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c === 0x22 || c === 0x5c) out += `\\${value[i]}`
    else if (c === 0x09) out += '\\t'
    else if (c === 0x0a) out += '\\n'
    else if (c === 0x0d) out += '\\r'
    else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).padStart(4, '0')}`
    else out += value[i]
  }
  return out
}
