import { pipeline, type Readable } from 'node:stream'
import { createGzip, type ZlibOptions } from 'node:zlib'
import type { GzipConf } from './config/model.js'
import { acceptsGzip } from './accept-encoding.js'
import { parseHttpTime } from './http-date.js'
import { regexExec } from './regex-match.js'
import type { RequestState } from './request-state.js'

/** The statuses ngx_http_gzip_header_filter compresses. */
const COMPRESSED = new Set([200, 403, 404])

/**
 * ngx_http_gzip_header_filter, on an answer's final fields (after add_header and expires, as
 * nginx's filter order has it): whether the body is compressed. `length` is the body's size
 * when known. When it is, the fields are changed as nginx changes them: Content-Encoding
 * added last, Content-Length and Accept-Ranges dropped, the ETag made weak. Either way an
 * answer the filter considered gets `Vary: Accept-Encoding` under gzip_vary, whether or not
 * this client takes gzip (a cache in between must not give the plain copy to the next one).
 */
export function gzipHeaders(st: RequestState, status: number, headers: string[], length: number | undefined, proxied = false): ZlibOptions | undefined {
  const g = st.conf.gzip
  // ngx_http_gzip_header_filter leaves subrequests alone (r != r->main).
  if (!g.on || st.isSubrequest || !COMPRESSED.has(status) || field(headers, 'content-encoding') || (length !== undefined && length < g.minLength) || !typeMatches(g, headers)) {
    return undefined
  }
  st.gzipVary = true
  addGzipVary(st, headers)
  if (!gzipOk(st, headers, proxied)) return undefined
  let etagAt = -1
  for (let i = 0; i < headers.length; i += 2) {
    const lower = (headers[i] as string).toLowerCase()
    if (lower === 'content-length' || lower === 'accept-ranges') {
      headers.splice(i, 2)
      i -= 2
    } else if (lower === 'etag') etagAt = i
  }
  if (etagAt >= 0) weakEtag(headers, etagAt)
  headers.push('Content-Encoding', 'gzip')
  return zlibOptions(g, length)
}

/**
 * ngx_http_gzip_ok: the client takes gzip (Accept-Encoding as nginx reads it), is not a
 * disabled agent, speaks gzip_http_version or later, and, when the request came through a
 * proxy (Via), gzip_proxied allows this answer. `answer` is the answer's fields so far (none
 * yet for gzip_static); `proxied` says they are a backend's.
 */
export function gzipOk(st: RequestState, answer: readonly string[] | undefined, proxied = false): boolean {
  const { req } = st
  const g = st.conf.gzip
  if (st.isSubrequest) return false
  const ae = req.header('accept-encoding')
  if (ae === undefined || !acceptsGzip(ae)) return false
  const ua = req.header('user-agent')
  if (g.disableMsie6 && ua !== undefined && isMsie6(ua)) return false
  if (req.version === '1.0' && g.httpVersion === '1.1') return false
  if (req.header('via') !== undefined && !proxiedOk(st, g.proxied, answer ?? [], proxied)) return false
  if (ua !== undefined) for (const re of g.disable) if (regexExec(re, ua) !== null) return false
  return true
}

/**
 * The gzip_proxied decisions of ngx_http_gzip_ok, in its order. nginx reads the fields as they
 * stand in r->headers_out when the filter runs: the Date and a file's Last-Modified are only
 * written later by the header filter, so only a backend's Last-Modified counts, and the time
 * an Expires is compared with is now.
 */
function proxiedOk(st: RequestState, p: ReadonlySet<string>, answer: readonly string[], proxied: boolean): boolean {
  if (p.has('off')) return false
  if (p.has('any')) return true
  if (p.has('auth') && st.req.header('authorization') !== undefined) return true
  const expires = field(answer, 'expires')
  if (expires !== undefined) {
    if (!p.has('expired')) return false
    const at = parseHttpTime(expires)
    if (at < 0) return false
    return at < Math.floor(Date.now() / 1000)
  }
  const cc = allFields(answer, 'cache-control')
  if (cc.length > 0) {
    for (const flag of ['no-cache', 'no-store', 'private']) if (p.has(flag) && cc.some((v) => hasDirective(v, flag))) return true
    return false
  }
  if (p.has('no_last_modified') && proxied && field(answer, 'last-modified') !== undefined) return false
  if (p.has('no_etag') && field(answer, 'etag') !== undefined) return false
  return true
}

/**
 * A streamed body through the filter: the compressed stream to pipe into the response, with
 * errors and an early close carried both ways.
 */
export function gzipStream(st: RequestState, source: Readable, options: ZlibOptions): Readable {
  const z = createGzip(options)
  // Counted before anything can flow: the consumer attaches its own 'data' listener at once.
  let outBytes = 0
  z.on('data', (c: Buffer) => {
    outBytes += c.length
  })
  z.once('end', () => {
    st.gzipRatio = gzipRatio(z.bytesWritten, outBytes)
  })
  pipeline(source, z, () => {})
  return z
}

/** $gzip_ratio as ngx_http_gzip_ratio_variable writes it: hundredths, the thousandth rounded half up. */
export function gzipRatio(inBytes: number, outBytes: number): string {
  if (outBytes === 0) return ''
  let whole = Math.floor(inBytes / outBytes)
  let frac = Math.floor((inBytes * 100) / outBytes) % 100
  if (Math.floor((inBytes * 1000) / outBytes) % 10 > 4) {
    frac++
    if (frac > 99) {
      whole++
      frac = 0
    }
  }
  return `${whole}.${String(frac).padStart(2, '0')}`
}

/**
 * zlib's settings for one answer: a small body of a known length gets a smaller window and
 * hash, as ngx_http_gzip_filter_deflate_start picks them (same output, less memory).
 */
function zlibOptions(g: GzipConf, length: number | undefined): ZlibOptions {
  let windowBits = g.windowBits
  let memLevel = g.memLevel
  if (length !== undefined && length > 0) {
    while (length < (1 << (windowBits - 1)) - 262) {
      windowBits--
      memLevel--
    }
    if (memLevel < 1) memLevel = 1
  }
  return { level: g.level, windowBits: Math.max(windowBits, 9), memLevel }
}

/**
 * gzip_vary's field, where ngx_http_header_filter writes it: after the fields it writes first
 * (Server, Date, the type and length), before the rest of the list. Once per list.
 */
export function addGzipVary(st: RequestState, headers: string[]): void {
  if (!st.conf.gzip.vary) return
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'Vary' && headers[i + 1] === 'Accept-Encoding') return
  let i = 0
  while (i < headers.length && FRONT.has((headers[i] as string).toLowerCase())) i += 2
  headers.splice(i, 0, 'Vary', 'Accept-Encoding')
}
const FRONT = new Set(['server', 'date', 'content-type', 'content-length'])

/**
 * ngx_http_test_content_type on r->headers_out.content_type_len bytes: the type ends at a
 * `;` only when a `charset=` parameter follows it (ngx_http_upstream_copy_content_type), so
 * `text/html; foo=bar` is not text/html here either.
 */
export function typeMatches(g: { readonly types: GzipConf['types'] }, headers: readonly string[]): boolean {
  if (g.types === '*') return true
  const value = field(headers, 'content-type')
  if (value === undefined || value === '') return false
  let end = value.length
  for (let p = value.indexOf(';'); p >= 0; p = value.indexOf(';', p + 1)) {
    let q = p + 1
    while (value[q] === ' ') q++
    if (value.slice(q, q + 8).toLowerCase() === 'charset=') {
      end = p
      break
    }
  }
  return g.types.has(value.slice(0, end).toLowerCase())
}

/** ngx_http_weak_etag: `W/` before a strong tag; a field that is no entity-tag at all goes. */
export function weakEtag(headers: string[], at: number): void {
  const v = headers[at + 1] as string
  if (v.length > 2 && v.startsWith('W/')) return
  if (!v.startsWith('"')) headers.splice(at, 2)
  else headers[at + 1] = `W/${v}`
}

/** ngx_http_process_user_agent's msie6: MSIE 4.x, 5.x, or 6.x without SV1; never Opera. */
function isMsie6(ua: string): boolean {
  if (ua.includes('Opera')) return false
  const m = ua.indexOf('MSIE ')
  if (m < 0 || m + 7 >= ua.length || ua[m + 6] !== '.') return false
  const major = ua[m + 5]
  return major === '4' || major === '5' || (major === '6' && !ua.slice(m + 8).includes('SV1'))
}

/** ngx_http_parse_multi_header_lines: the token as a whole directive name in a comma list. */
function hasDirective(value: string, name: string): boolean {
  const lower = value.toLowerCase()
  for (let at = lower.indexOf(name); at >= 0; at = lower.indexOf(name, at + 1)) {
    const before = at === 0 ? ',' : (lower[at - 1] as string)
    const after = lower[at + name.length] ?? ','
    if ((before === ',' || before === ' ' || before === ';') && (after === ',' || after === ' ' || after === ';' || after === '=')) return true
  }
  return false
}

function field(headers: readonly string[], lower: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if ((headers[i] as string).toLowerCase() === lower) return headers[i + 1] as string
  return undefined
}

function allFields(headers: readonly string[], lower: string): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) if ((headers[i] as string).toLowerCase() === lower) out.push(headers[i + 1] as string)
  return out
}
