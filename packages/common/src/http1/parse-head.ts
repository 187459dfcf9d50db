import { Http1ParseError } from './errors.js'

export interface Http1Limits {
  /** Longest request line, CRLF excluded (varnish `http_req_hdr_len`, nginx `large_client_header_buffers`): 414. */
  maxRequestLineBytes: number
  /** Longest request head, request line and fields together (varnish `http_req_size`): 431. */
  maxHeadBytes: number
  /** Most header fields in one request (varnish `http_max_hdr`). */
  maxHeaderCount: number
  /**
   * Longest header field line, CRLF excluded (varnish `http_req_hdr_len`, nginx's
   * `large_client_header_buffers` size): 431 (nginx: 400 "Request Header Or Cookie Too Large").
   */
  maxFieldLineBytes: number
}

export const DEFAULT_LIMITS: Http1Limits = {
  maxRequestLineBytes: 8192,
  maxHeadBytes: 32768,
  maxHeaderCount: 64,
  maxFieldLineBytes: 8192,
}

export interface ParsedHead {
  method: string
  target: string
  /** '2.0' only for a request an HTTP/2 layer built from a stream (never parsed here). */
  version: '1.0' | '1.1' | '2.0'
  headers: string[]
  /** Undefined when there is no Content-Length. */
  contentLength: number | undefined
  chunked: boolean
  keepAlive: boolean
  /** The request carries `Connection: upgrade` and an `Upgrade` field. */
  upgrade: boolean
}

// RFC 9110 §5.6.2 token; the request line is RFC 9112 §3 with exactly one SP between parts.
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\x00-\x20\x7f]+) HTTP\/(\d)\.(\d)$/
const LOOKS_LIKE_HTTP = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^\x00-\x20\x7f]+ HTTP\/\d+\.\d+$/
// Only the name is matched by a regex: a lazy `(.*?)[ \t]*$` for the value backtracks
// quadratically on a value of many spaces followed by one other byte (32 KiB took seconds,
// blocking every other client), so OWS is trimmed by hand below.
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// Field values may hold HTAB, SP, VCHAR and obs-text; any other control byte is refused.
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/
const DIGITS = /^\d{1,15}$/

/**
 * Parses a request head (request line and fields, without the final empty line) read as
 * latin1 so every byte maps to one char. Stricter than RFC 9112's MAYs on purpose, because each
 * leniency below is a known request smuggling vector between two parsers that disagree:
 * bare CR (§2.2), obs-fold (§5.2), whitespace before the colon (§5.1), CL with TE and
 * differing CLs (§6.3), TE on HTTP/1.0, and a missing or repeated Host (§3.2).
 */
export function parseRequestHead(head: string, limits: Http1Limits): ParsedHead {
  // Lines end with CRLF or a bare LF (RFC 9112 §2.2, as nginx and varnishd read them); a CR
  // anywhere else is a bare CR, which parsers disagree on: refused.
  const lines = head.split('\n')
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i] as string
    if (line.charCodeAt(line.length - 1) === 0x0d) line = line.slice(0, -1)
    if (line.includes('\r')) throw new Http1ParseError('bad-request', 'bare CR in the request head')
    lines[i] = line
  }
  const requestLine = lines[0] as string
  if (requestLine.length > limits.maxRequestLineBytes) {
    throw new Http1ParseError('request-line-too-long', 'request line too long')
  }
  const m = REQUEST_LINE.exec(requestLine)
  if (!m) {
    if (LOOKS_LIKE_HTTP.test(requestLine)) throw new Http1ParseError('unsupported-version', 'unsupported HTTP version')
    throw new Http1ParseError('bad-request', 'malformed request line')
  }
  const [, method, target, major, minor] = m as unknown as [string, string, string, string, string]
  if (major !== '1' || (minor !== '0' && minor !== '1')) {
    throw new Http1ParseError(major === '0' ? 'bad-request' : 'unsupported-version', `HTTP/${major}.${minor} is not supported`)
  }
  const version = minor === '1' ? '1.1' : '1.0'
  if (lines.length - 1 > limits.maxHeaderCount) throw new Http1ParseError('headers-too-large', 'too many header fields')

  const headers: string[] = []
  let contentLength: number | undefined
  let transferEncoding: string | undefined
  let connection = ''
  let hosts = 0
  let hasUpgrade = false
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string
    if (line.length > limits.maxFieldLineBytes) throw new Http1ParseError('headers-too-large', 'header field line too long')
    const colon = line.indexOf(':')
    const name = colon === -1 ? '' : line.slice(0, colon)
    if (!FIELD_NAME.test(name)) {
      throw new Http1ParseError(
        'bad-request',
        line.startsWith(' ') || line.startsWith('\t') ? 'obsolete line folding' : 'malformed header field',
      )
    }
    const value = trimOws(line, colon + 1)
    if (BAD_VALUE.test(value)) throw new Http1ParseError('bad-request', `control character in ${name}`)
    headers.push(name, value)
    switch (name.toLowerCase()) {
      case 'content-length':
        // One field with one number. RFC 9110 §8.6 lets a recipient take a list or repeats of
        // the same number; nginx and varnishd both answer 400 instead, and so do we: two
        // framings of one body are where smuggling starts.
        if (contentLength !== undefined) throw new Http1ParseError('bad-request', 'more than one Content-Length')
        if (!DIGITS.test(value)) throw new Http1ParseError('bad-request', 'invalid Content-Length')
        contentLength = Number(value)
        break
      case 'transfer-encoding':
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`
        break
      case 'host':
        hosts++
        if (!isValidHost(value)) throw new Http1ParseError('bad-request', 'invalid Host')
        break
      case 'connection':
        connection = connection ? `${connection},${value.toLowerCase()}` : value.toLowerCase()
        break
      case 'upgrade':
        hasUpgrade = true
        break
    }
  }
  if (version === '1.1' && hosts !== 1) {
    throw new Http1ParseError('bad-request', hosts === 0 ? 'missing Host' : 'more than one Host')
  }
  if (hosts > 1) throw new Http1ParseError('bad-request', 'more than one Host')

  let chunked = false
  if (transferEncoding !== undefined) {
    if (contentLength !== undefined) throw new Http1ParseError('bad-request', 'both Content-Length and Transfer-Encoding')
    if (version === '1.0') throw new Http1ParseError('bad-request', 'Transfer-Encoding in an HTTP/1.0 request')
    const codings = transferEncoding.split(',').map((c) => c.trim().toLowerCase())
    // Only a lone "chunked" is accepted: "gzip, chunked" would need a decoder we do not
    // apply, and "chunked, chunked" or a non-final chunked is invalid framing (§6.1).
    if (codings.length !== 1 || codings[0] !== 'chunked') {
      if (codings.at(-1) !== 'chunked') throw new Http1ParseError('bad-request', 'invalid Transfer-Encoding')
      throw new Http1ParseError('unsupported-transfer-coding', `unsupported Transfer-Encoding "${transferEncoding}"`)
    }
    chunked = true
  }

  const tokens = connection ? connection.split(',').map((t) => t.trim()) : []
  // `close` wins over `keep-alive` in either version (RFC 9112 §9.3; nginx looks for it first).
  const keepAlive = !tokens.includes('close') && (version === '1.1' || tokens.includes('keep-alive'))
  return {
    method,
    target,
    version,
    headers,
    contentLength,
    chunked,
    keepAlive,
    upgrade: hasUpgrade && tokens.includes('upgrade'),
  }
}

/** The field value after `from`, without the optional whitespace around it (RFC 9110 §5.5). */
function trimOws(line: string, from: number): string {
  let start = from
  let end = line.length
  while (start < end && isOws(line.charCodeAt(start))) start++
  while (end > start && isOws(line.charCodeAt(end - 1))) end--
  return line.slice(start, end)
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09
}

/**
 * nginx's ngx_http_validate_host rule: no path separator, no "..", no NUL, space or control
 * byte. A Host like "a/../b" or "x y" must never reach a cache key or a file path.
 */
function isValidHost(host: string): boolean {
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i)
    if (c <= 0x20 || c === 0x7f || c === 0x2f || c === 0x5c) return false
    if (c === 0x2e && host.charCodeAt(i + 1) === 0x2e) return false
  }
  return true
}
