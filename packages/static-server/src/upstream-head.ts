/** A backend's response head, as nginx's proxy module reads it. */
export interface UpstreamHead {
  /** HTTP/x.y of the status line, as major * 1000 + minor (nginx's r->http_version). */
  version: number
  status: number
  /** The status line after the version, as the backend wrote it (`302 Moved Temporarily`). */
  statusText: string
  /** Flat [name, value, ...] in the order written; names as written, values trimmed. */
  fields: string[]
  /** Bytes of the head, blank line included: the body starts there. */
  size: number
}

export type HeadResult = UpstreamHead | 'more' | 'too-big' | 'no-status-line' | 'invalid-header'

const CR = 0x0d
const LF = 0x0a
const SP = 0x20

/**
 * ngx_http_parse_status_line and ngx_http_parse_header_line (nginx 1.22, allow_underscores as
 * for upstreams) over what has arrived so far: lines end in LF with an optional CR before it;
 * a field name with a space or control byte, a NUL anywhere, or a line starting with white
 * space (obs-fold) is an invalid header (502); other odd name bytes are passed on, as nginx
 * does; a line without a colon is a field with an empty value; an `HTTP/...` line among the
 * fields (IIS writes two status lines) is skipped. The whole head must fit `limit` bytes
 * (proxy_buffer_size: "upstream sent too big header").
 *
 * Incremental: bytes are appended to one buffer that grows by doubling, and each line is read
 * once, so a backend that trickles its head a byte at a time costs linear work.
 */
export class UpstreamHeadParser {
  readonly #limit: number
  #buf: Buffer = Buffer.alloc(0)
  #len = 0
  /** Where the next unread line starts. */
  #at = 0
  #status: Omit<UpstreamHead, 'fields' | 'size'> | undefined
  #fields: string[] = []

  constructor(limit: number) {
    this.#limit = limit
  }

  /** Bytes received so far and not yet part of a returned head. */
  get buffered(): Buffer {
    return this.#buf.subarray(0, this.#len)
  }

  /** Adds `chunk` and parses what can be parsed. After a head, `rest()` has the bytes past it. */
  push(chunk: Buffer): HeadResult {
    if (this.#len + chunk.length > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.#len + chunk.length, this.#buf.length * 2, 1024))
      this.#buf.copy(grown, 0, 0, this.#len)
      this.#buf = grown
    }
    chunk.copy(this.#buf, this.#len)
    this.#len += chunk.length
    return this.#parse()
  }

  /** Drops a head already returned (an interim 1xx) and parses what follows it. */
  next(size: number): HeadResult {
    this.#buf = Buffer.from(this.#buf.subarray(size, this.#len))
    this.#len = this.#buf.length
    this.#at = 0
    this.#status = undefined
    this.#fields = []
    return this.#parse()
  }

  #parse(): HeadResult {
    const buf = this.#buf.subarray(0, this.#len)
    const limit = this.#limit
    const lineEnd = (from: number) => {
      const lf = buf.indexOf(LF, from)
      return lf < 0 || lf >= limit ? -1 : lf
    }
    if (!this.#status) {
      const first = lineEnd(0)
      if (first < 0) return buf.length >= limit ? 'too-big' : statusPrefixOk(buf) ? 'more' : 'no-status-line'
      const status = statusLine(buf.toString('latin1', 0, first > 0 && buf[first - 1] === CR ? first - 1 : first))
      if (!status) return 'no-status-line'
      this.#status = status
      this.#at = first + 1
    }
    for (;;) {
      const lf = lineEnd(this.#at)
      if (lf < 0) return buf.length >= limit ? 'too-big' : 'more'
      const at = this.#at
      const end = lf > at && buf[lf - 1] === CR ? lf - 1 : lf
      this.#at = lf + 1
      if (end === at) return { ...this.#status, fields: this.#fields, size: lf + 1 }
      const f = fieldLine(buf.subarray(at, end))
      if (f === 'invalid') return 'invalid-header'
      if (f) this.#fields.push(f[0], f[1])
    }
  }
}

/** Whether what has arrived can still become `HTTP/`: a backend without one is an HTTP/0.9 one. */
function statusPrefixOk(buf: Buffer): boolean {
  const n = Math.min(buf.length, 5)
  return buf.toString('latin1', 0, n) === 'HTTP/'.slice(0, n)
}

const STATUS = /^HTTP\/(\d{1,3})\.(\d{1,3}) +((\d{3})(?:[ .][^\r\n]*)?)$/

function statusLine(line: string): Omit<UpstreamHead, 'fields' | 'size'> | undefined {
  const m = STATUS.exec(line)
  // nginx passes 000-099 on; no client reads them as a status (RFC 9110 §15: 100-599), so a 502.
  if (!m || Number(m[4]) < 100) return undefined
  return { version: Number(m[1]) * 1000 + Number(m[2]), status: Number(m[4]), statusText: m[3] as string }
}

function fieldLine(line: Buffer): [string, string] | 'invalid' | undefined {
  const c0 = line[0] as number
  if (c0 <= SP || c0 === 0x7f || c0 === 0x3a) return 'invalid'
  let i = 0
  for (; i < line.length; i++) {
    const c = line[i] as number
    if (c === 0x3a) break
    if (c <= SP || c === 0x7f) return 'invalid'
    if (c === 0x2f && i === 4 && line.toString('latin1', 0, 4) === 'HTTP') return undefined
  }
  const name = line.toString('latin1', 0, i)
  let v = i + 1
  while (v < line.length && line[v] === SP) v++
  let e = line.length
  if (line.indexOf(0, v) >= 0) return 'invalid'
  // A lone CR inside a value does not end it for nginx either: sw_almost_done wants LF next.
  if (line.indexOf(CR, v) >= 0) return 'invalid'
  while (e > v && line[e - 1] === SP) e--
  return [name, v >= line.length ? '' : line.toString('latin1', v, e)]
}
