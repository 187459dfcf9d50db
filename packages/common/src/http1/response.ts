import { EventEmitter } from 'node:events'
import { STATUS_CODES } from 'node:http'
import type { Readable } from 'node:stream'
import { EdgeError } from '../errors.js'
import { type Pace, PacedWriter } from './paced-writer.js'
import type { Http1Request } from './request.js'

/** Not forwarded from the caller's list: the server owns framing and connection management. */
const OWNED = new Set(['connection', 'transfer-encoding', 'keep-alive', 'content-length'])
// RFC 9110 §5.5: CR, LF and NUL in a field would split the response (response splitting).
const UNSAFE = /[\r\n\0]/
// RFC 9110 §5.1: a name is a token. "Transfer-Encoding " would slip past OWNED and a lenient
// client could still read it as framing.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const CRLF = '\r\n'
const LAST_CHUNK = Buffer.from('0\r\n\r\n')
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n')
const DIGITS = /^\d{1,15}$/
const CLOSE_TOKEN = /(?:^|,)\s*close\s*(?:,|$)/i

export class InvalidResponseHeaderError extends EdgeError {
  constructor(name: string) {
    super(
      'EDGE_ERR_INVALID_RESPONSE_HEADER',
      `refusing to send header ${JSON.stringify(name)}: its name is not a token, or CR, LF or NUL in it`,
    )
  }
}

/**
 * Where a streamed head's fields go, for a server that mirrors another's layout (nginx writes
 * Content-Type and Content-Length first, an absolute Location next, then Transfer-Encoding and
 * Connection, then the rest of its list).
 */
/** A rewrite of body bytes (see Http1Response.bodyFilter). */
export interface BodyFilter {
  recode(chunk: Buffer | undefined): Buffer
  readonly keepsLength: boolean
}

export interface HeadLayout {
  /** The status line after `HTTP/1.1 `, written as given (a backend's own reason, or none). */
  statusText?: string
  /** Fields written after Content-Length, before Transfer-Encoding. */
  afterLength?: readonly string[]
  /** Fields written after the Connection field. */
  trailing?: readonly string[]
}

/** What the connection needs from a response, without a dependency cycle. */
export interface ResponseOwner {
  readonly socket: import('node:net').Socket
  responseFinished(res: Http1Response): void
  canKeepAlive(req: Http1Request): boolean
  /** An HTTP/1.1 answer that keeps the connection says so (nginx), or says nothing (varnishd). */
  readonly announcesKeepAlive: boolean
  hijack(res: Http1Response): { socket: import('node:net').Socket; rest: Buffer }
}

/**
 * One response on an HTTP/1.1 connection. `send()` writes a whole response in one go (the
 * fast path for cache hits and small files); `writeHead()`/`write()`/`end()` or `pipeFrom()`
 * stream one with backpressure. The server adds the framing (Content-Length or chunked) and
 * the Connection field; a HEAD request or a 1xx/204/304 status never gets a body.
 * Emits 'finish' when the last byte is handed to the socket and 'close' if the connection
 * goes away before that; 'clientend' when the client half-closes before the answer is over.
 */
export class Http1Response extends EventEmitter {
  statusCode = 0
  headersSent = false
  finished = false
  /** Body bytes written, for access logs ($body_bytes_sent / %b). */
  bytesWritten = 0
  /**
   * Every byte handed to the socket for this response: head, body and chunk framing (nginx's
   * `$bytes_sent`, whose `$body_bytes_sent` is this less `headBytes`).
   */
  bytesSent = 0
  /** Bytes of the status line and header fields. */
  headBytes = 0
  /** The head as written by send() or writeHead() (latin1): varnishd's Resp* log records read it. */
  head: string | undefined = undefined
  /**
   * Called once when the last byte is handed to the socket, before 'finish' is emitted: the
   * access log's hook, without the cost of a once-listener on every request.
   */
  onFinish: (() => void) | undefined = undefined
  /**
   * Asked once, just before the first byte of this response goes out: a rate to send it at
   * (nginx's limit_rate, decided when its write filter first runs). None: as fast as the
   * client reads.
   */
  pacing: (() => Pace | undefined) | undefined = undefined
  /**
   * Written after `Connection: keep-alive` when the connection is kept (CRLF included): nginx's
   * `Keep-Alive: timeout=N` from `keepalive_timeout T N`, set with the location. '' for none.
   */
  keepAliveField = ''
  /**
   * Trailer fields for the last chunk, asked for when the body ends (nginx's add_trailer, whose
   * values are read then). Set before the head is written, it makes an HTTP/1.1 answer with a
   * body chunked even when its length is known (nginx's chunked filter with r->expect_trailers);
   * an HTTP/1.0 client gets the length and no trailer.
   */
  trailers: (() => readonly string[]) | undefined = undefined
  /**
   * Rewrites the body on its way out (nginx's charset filter), set before the head is written;
   * called once more with undefined at the end for what it still holds. When it does not keep
   * the length, a length the caller knows is not sent: the body is chunked (HTTP/1.1) or ends
   * with the connection (HTTP/1.0), as nginx clears Content-Length for such a filter.
   */
  bodyFilter: BodyFilter | undefined = undefined
  /** The pacer, null when pacing said none, undefined before the first byte. */
  #pacer: PacedWriter | null | undefined
  /** The last byte was given (end(), send()); `finished` waits for paced bytes to leave. */
  #ended = false
  readonly #owner: ResponseOwner
  readonly #req: Http1Request
  #chunked = false
  #noBody = false
  /** Body bytes still owed under a declared Content-Length; undefined when not counting. */
  #remaining: number | undefined

  constructor(owner: ResponseOwner, req: Http1Request) {
    super()
    this.#owner = owner
    this.#req = req
  }

  /** The connection's socket: its 'drain' is when a refused write() may go on. */
  get socket(): import('node:net').Socket {
    return this.#owner.socket
  }

  /** A whole response: `headers` is a flat [name, value, ...] list; Content-Length is computed. */
  send(status: number, headers: readonly string[], body?: Buffer | string, reason?: string, layout?: HeadLayout): void {
    const buf = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body) : body
    this.#noBody = this.#req.method === 'HEAD' || status < 200 || status === 204 || status === 304
    const filter = this.bodyFilter
    if (filter !== undefined || this.trailers !== undefined) {
      this.#sendFiltered(status, headers, buf, reason, layout)
      return
    }
    this.statusCode = status
    const withBody = buf !== undefined && buf.length > 0 && !this.#noBody
    // The length is ours to state: a caller's (cached or backend) Content-Length next to it
    // would be two framings. For HEAD it describes the body a GET gets, so it is kept.
    const length = this.#noBody && !buf?.length ? declaredLength(headers) : undefined
    if (asksClose(headers)) this.#req.keepAlive = false
    const head = formatHead(status, headers, length ?? (buf ? buf.length : 0), this.connectionField(), reason, layout)
    const socket = this.#owner.socket
    this.headersSent = true
    this.head = head
    this.headBytes = head.length
    this.bytesSent += head.length + (withBody ? buf.length : 0)
    if (this.#paced()) {
      this.#put(withBody ? joinHead(head, buf) : Buffer.from(head, 'latin1'))
      if (withBody) this.bytesWritten += buf.length
    } else if (withBody && buf.length <= ONE_WRITE_BYTES) {
      // One buffer, one write(2): cheaper than writev of two for small answers.
      socket.write(joinHead(head, buf))
      this.bytesWritten += buf.length
    } else if (withBody) {
      socket.cork()
      socket.write(head, 'latin1')
      socket.write(buf)
      socket.uncork()
      this.bytesWritten += buf.length
    } else {
      socket.write(head, 'latin1')
    }
    this.#finish()
  }

  /** send() with a trailer or a body filter (add_trailer, charset): chunked, or recoded whole. */
  #sendFiltered(status: number, headers: readonly string[], buf: Buffer | undefined, reason?: string, layout?: HeadLayout): void {
    const filter = this.bodyFilter
    if (this.#withTrailers() || (filter !== undefined && !filter.keepsLength)) {
      // Chunked, so the trailer has a place, or the filter changes the length: the length the
      // caller knows is not sent.
      this.writeHead(status, withoutLength(headers), reason, layout)
      this.end(buf)
      return
    }
    if (filter !== undefined && buf !== undefined && !this.#noBody) {
      this.bodyFilter = undefined
      this.send(status, headers, Buffer.concat([filter.recode(buf), filter.recode(undefined)]), reason, layout)
      return
    }
    this.bodyFilter = undefined
    this.trailers = undefined
    this.send(status, headers, buf, reason, layout)
  }

  /**
   * A whole response the caller formatted earlier with `formatResponse()` (a ready answer
   * kept for a cached file): written as it is, in one piece. `connectionField()` must have
   * given the Connection field it was formatted with; `bodyBytes` is for the access log.
   */
  sendFormatted(status: number, wire: Buffer, bodyBytes: number): void {
    if (this.headersSent) throw new EdgeError('EDGE_ERR_HEADERS_SENT', 'headers already sent')
    this.statusCode = status
    this.headersSent = true
    this.#put(wire)
    this.bytesWritten += bodyBytes
    this.bytesSent += wire.length
    this.headBytes = wire.length - bodyBytes
    this.#finish()
  }

  /**
   * The interim answer to `Expect: 100-continue` (RFC 9110 §10.1.1), for a handler about to
   * read the body; nothing once the final answer has started.
   */
  writeContinue(): void {
    if (this.headersSent) return
    this.#owner.socket.write(CONTINUE)
    this.bytesSent += CONTINUE.length
  }

  /**
   * An interim 1xx response relayed ahead of the final one (RFC 9110 §15.2: a proxy forwards
   * 1xx it did not ask for, but never to an HTTP/1.0 client). False when not written: an
   * HTTP/1.0 request, or the final answer has started.
   */
  writeInterim(status: number, headers: readonly string[], reason?: string): boolean {
    if (this.headersSent || this.#req.version === '1.0' || status < 100 || status > 199) return false
    let head: string
    try {
      head = statusLine(status, reason) + fields(headers) + CRLF
    } catch {
      return false // a field we would not write on a final response either
    }
    this.#owner.socket.write(head, 'latin1')
    this.bytesSent += head.length
    return true
  }

  /**
   * Starts a streamed response. A Content-Length in `headers` is kept and trusted; without
   * one the body is chunked (HTTP/1.1) or delimited by closing the connection (HTTP/1.0).
   */
  writeHead(status: number, headers: readonly string[], reason?: string, layout?: HeadLayout): void {
    if (this.headersSent) throw new EdgeError('EDGE_ERR_HEADERS_SENT', 'headers already sent')
    this.#noBody = this.#req.method === 'HEAD' || status < 200 || status === 204 || status === 304
    this.statusCode = status
    const line = layout?.statusText === undefined ? statusLine(status, reason) : `HTTP/1.1 ${safeStatusText(layout.statusText)}${CRLF}`
    let head = line + fields(headers)
    // Conflicting or malformed lengths (a hostile backend's) are dropped for chunked framing,
    // and a declared length is enforced in write()/end() so a body cannot overrun into what
    // the client reads as the next response.
    const length = this.bodyFilter?.keepsLength === false ? undefined : declaredLength(headers)
    const trailing = this.#withTrailers()
    if (length !== undefined) {
      if (!trailing) head += `Content-Length: ${length}${CRLF}`
      if (!this.#noBody) this.#remaining = length
    }
    if (layout?.afterLength) head += fields(layout.afterLength)
    if ((length === undefined || trailing) && !this.#noBody) {
      if (this.#req.version === '1.1') {
        this.#chunked = true
        head += `Transfer-Encoding: chunked${CRLF}`
      } else {
        this.#req.keepAlive = false
      }
    }
    if (asksClose(headers)) this.#req.keepAlive = false
    head += this.connectionField()
    if (layout?.trailing) head += fields(layout.trailing)
    head += CRLF
    this.headersSent = true
    this.head = head
    this.headBytes = head.length
    this.bytesSent += head.length
    // Unpaced, the head goes as a string: no Buffer made for it on every streamed answer.
    if (this.#paced()) (this.#pacer as PacedWriter).write(Buffer.from(head, 'latin1'))
    else this.#owner.socket.write(head, 'latin1')
  }

  /** Returns false when the socket's buffer is full: wait for 'drain' on `socket`. */
  write(chunk: Buffer | string): boolean {
    if (this.#ended) return false
    if (this.#noBody) return true
    let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    if (this.bodyFilter) buf = this.bodyFilter.recode(buf)
    if (this.#remaining !== undefined) {
      if (buf.length > this.#remaining) {
        buf = buf.subarray(0, this.#remaining)
        this.#req.keepAlive = false
      }
      this.#remaining -= buf.length
    }
    if (buf.length === 0) return true
    this.bytesWritten += buf.length
    const socket = this.#owner.socket
    if (!this.#chunked) {
      this.bytesSent += buf.length
      return this.#put(buf)
    }
    const size = buf.length.toString(16)
    this.bytesSent += size.length + buf.length + 4
    if (this.#pacer) {
      this.#pacer.write(Buffer.from(`${size}${CRLF}`, 'latin1'))
      this.#pacer.write(buf)
      return this.#pacer.write(Buffer.from(CRLF, 'latin1'))
    }
    socket.cork()
    socket.write(`${size}${CRLF}`, 'latin1')
    socket.write(buf)
    const ok = socket.write(CRLF, 'latin1')
    socket.uncork()
    return ok
  }

  end(chunk?: Buffer | string): void {
    if (this.#ended) return
    if (chunk !== undefined) this.write(chunk)
    const filter = this.bodyFilter
    if (filter !== undefined && !this.#noBody) {
      const tail = filter.recode(undefined)
      this.bodyFilter = undefined
      if (tail.length > 0) this.write(tail)
    }
    if (this.#chunked && !this.#noBody) {
      const last = this.trailers ? lastChunk(this.trailers()) : LAST_CHUNK
      this.#put(last)
      this.bytesSent += last.length
    }
    // Short of its declared length: only a close tells the client the body ended early.
    if (this.#remaining) this.#req.keepAlive = false
    this.#finish()
  }

  /** Streams `body` into this response with backpressure; resolves when it ended. */
  pipeFrom(body: Readable): Promise<void> {
    const socket = this.#owner.socket
    return new Promise((resolve, reject) => {
      const onDrain = () => body.resume()
      const cleanup = () => {
        socket.off('drain', onDrain)
        this.off('close', onClose)
      }
      const onClose = () => {
        cleanup()
        body.destroy()
        resolve()
      }
      body.on('data', (c: Buffer) => {
        if (!this.write(c)) body.pause()
      })
      body.once('end', () => {
        cleanup()
        this.end()
        resolve()
      })
      body.once('error', (err) => {
        cleanup()
        reject(err)
      })
      socket.on('drain', onDrain)
      this.once('close', onClose)
    })
  }

  /** Takes the raw socket (varnish's pipe, websocket upgrades); `rest` is what was read past the head. */
  hijack(): { socket: import('node:net').Socket; rest: Buffer } {
    this.headersSent = true
    this.finished = true
    this.#ended = true
    return this.#owner.hijack(this)
  }

  /** Gives up on this response: the connection is closed. */
  destroy(): void {
    this.#owner.socket.destroy()
  }

  /**
   * The Connection field this response carries (CRLF included, '' when none): `close` when
   * the connection will not be kept, `keep-alive` for an HTTP/1.0 client that keeps it, and
   * for an HTTP/1.1 one too when the server announces it (nginx does, varnishd does not).
   */
  connectionField(): string {
    const req = this.#req
    if (!this.#owner.canKeepAlive(req)) {
      req.keepAlive = false
      return `Connection: close${CRLF}`
    }
    return req.version === '1.0' || this.#owner.announcesKeepAlive ? `Connection: keep-alive${CRLF}${this.keepAliveField}` : ''
  }

  /** An HTTP/1.1 answer with a body and a trailer to send: it is chunked. */
  #withTrailers(): boolean {
    return this.trailers !== undefined && !this.#noBody && this.#req.version === '1.1'
  }

  /** Whether this response's bytes go through a pacer (asking `pacing` the first time). */
  #paced(): boolean {
    if (this.#pacer === undefined) {
      const pace = this.pacing?.()
      this.#pacer = pace !== undefined && pace.rate > 0 ? new PacedWriter(this.#owner.socket, pace) : null
    }
    return this.#pacer !== null
  }

  /** One piece to the socket, through the pacer when there is one. */
  #put(buf: Buffer): boolean {
    return this.#paced() ? (this.#pacer as PacedWriter).write(buf) : this.#owner.socket.write(buf)
  }

  #finish(): void {
    this.#ended = true
    // Paced bytes still waiting: the response is over once they reached the socket, so the
    // next one on this connection cannot overtake them (and the access log sees the end).
    if (this.#pacer) this.#pacer.whenFlushed(() => this.#finished())
    else this.#finished()
  }

  #finished(): void {
    this.finished = true
    this.onFinish?.()
    this.emit('finish')
    this.#owner.responseFinished(this)
  }
}

/** Bodies up to this size are copied next to their head and sent with one write. */
const ONE_WRITE_BYTES = 16 * 1024

function statusLine(status: number, reason: string | undefined): string {
  return `HTTP/1.1 ${status} ${reason ?? STATUS_CODES[status] ?? 'Unknown'}${CRLF}`
}

/**
 * The caller's own `Connection: close` (VCL's `set resp.http.Connection = "close"`): the
 * server owns the field, but honours it by closing after this response, as varnishd does
 * (cache_req_fsm.c: SC_RESP_CLOSE).
 */
function asksClose(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    if ((headers[i] as string).length === 10 && (headers[i] as string).toLowerCase() === 'connection' && CLOSE_TOKEN.test(headers[i + 1] as string)) return true
  }
  return false
}

/** A status text taken from elsewhere must not end the line early (response splitting). */
function safeStatusText(text: string): string {
  if (UNSAFE.test(text)) throw new InvalidResponseHeaderError('status line')
  return text
}

function fields(headers: readonly string[]): string {
  let out = ''
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    const value = headers[i + 1] as string
    if (OWNED.has(name.toLowerCase())) continue
    if (!TOKEN.test(name) || UNSAFE.test(value)) throw new InvalidResponseHeaderError(name)
    out += `${name}: ${value}${CRLF}`
  }
  return out
}

/** The head `send()` writes: status line, the caller's fields, Content-Length, Connection. */
function formatHead(status: number, headers: readonly string[], length: number, connection: string, reason?: string, layout?: HeadLayout): string {
  const line = layout?.statusText === undefined ? statusLine(status, reason) : `HTTP/1.1 ${safeStatusText(layout.statusText)}${CRLF}`
  let head = line + fields(headers)
  if (status >= 200 && status !== 204 && status !== 304) head += `Content-Length: ${length}${CRLF}`
  if (layout?.afterLength) head += fields(layout.afterLength)
  head += connection
  if (layout?.trailing) head += fields(layout.trailing)
  return head + CRLF
}

/** The last chunk with trailer fields (RFC 9112 §7.1.2); a field we would not write is left out. */
function lastChunk(trailer: readonly string[]): Buffer {
  let out = '0\r\n'
  for (let i = 0; i < trailer.length; i += 2) {
    try {
      out += fields([trailer[i] as string, trailer[i + 1] as string])
    } catch {
      // CR, LF or NUL in a value, or a name that is not a token: never written.
    }
  }
  return Buffer.from(`${out}\r\n`, 'latin1')
}

function withoutLength(headers: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) if ((headers[i] as string).toLowerCase() !== 'content-length') out.push(headers[i] as string, headers[i + 1] as string)
  return out
}

function joinHead(head: string, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(head.length + body.length)
  const n = out.write(head, 0, 'latin1')
  body.copy(out, n)
  return out
}

/**
 * The bytes `send(status, headers, body)` would write for a GET with the Connection field
 * `connection` (from `connectionField()`), for `sendFormatted()` to write again later.
 */
export function formatResponse(status: number, headers: readonly string[], body: Buffer, connection: string, reason?: string): Buffer {
  return joinHead(formatHead(status, headers, body.length, connection, reason), body)
}

/** The Content-Length the fields agree on, or undefined when absent, malformed or conflicting. */
export function declaredLength(headers: readonly string[]): number | undefined {
  let length: number | undefined
  for (let i = 0; i < headers.length; i += 2) {
    if ((headers[i] as string).toLowerCase() !== 'content-length') continue
    const value = (headers[i + 1] as string).trim()
    if (!DIGITS.test(value)) return undefined
    const n = Number(value)
    if (length !== undefined && length !== n) return undefined
    length = n
  }
  return length
}
