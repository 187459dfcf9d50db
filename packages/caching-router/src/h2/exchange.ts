import { constants, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import { PassThrough, type Readable } from 'node:stream'
import { EdgeError, Http1Request, Http1Response, InvalidResponseHeaderError, type PeerAddresses, type ResponseOwner } from '@edgestack/common'

/**
 * One HTTP/2 stream as the request pipeline's request and response (client-request.ts takes
 * an Http1Request and an Http1Response): the seam that lets every stream run the same VCL,
 * lookup and cache as an HTTP/1.1 request, as varnishd's h2 transport hands its streams to
 * the one cache_req_fsm.c. Only the wire form differs, so only it is overridden here.
 */

/**
 * RFC 9113 §8.2.2: connection-specific fields are malformed in HTTP/2; varnishd's h2 deliver
 * leaves them out of a response (cache_http2_deliver.c), and so does this.
 */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'])
const DIGITS = /^\d{1,15}$/

/** Streams this side reset: the rapid-reset budget counts only the client's RST_STREAMs. */
const ourResets = new WeakSet<ServerHttp2Stream>()

export function resetStream(stream: ServerHttp2Stream, code: number): void {
  if (stream.destroyed) return
  ourResets.add(stream)
  stream.close(code)
}

/** The client reset this stream (RST_STREAM with an error code) rather than this side. */
export function resetByClient(stream: ServerHttp2Stream): boolean {
  return stream.rstCode !== undefined && stream.rstCode !== constants.NGHTTP2_NO_ERROR && !ourResets.has(stream)
}

/** The stream's request fields as the pipeline's flat list, `:authority` as Host (RFC 9113 §8.3.1). */
export function requestFields(raw: readonly string[]): { headers: string[]; method: string; path: string; expect: boolean; contentLength: string[] | undefined } {
  const headers: string[] = []
  let contentLength: string[] | undefined
  let method = 'GET'
  let path = '/'
  let authority: string | undefined
  let host = false
  let expect = false
  let cookie: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    const value = raw[i + 1] as string
    if (name.charCodeAt(0) === 0x3a) {
      if (name === ':method') method = value
      else if (name === ':path') path = value
      else if (name === ':authority') authority = value
      continue
    }
    // nghttp2 lets no uppercase name through (RFC 9113 §8.2.1): names compare as they are.
    if (name === 'host') host = true
    else if (name === 'expect' && value.toLowerCase() === '100-continue') expect = true
    else if (name === 'content-length') {
      if (contentLength === undefined) contentLength = [value]
      else contentLength.push(value)
    }
    // RFC 9113 §8.2.3: cookie crumbs are joined with "; " before an HTTP/1.1 hop sees them.
    if (name === 'cookie') {
      cookie = cookie === undefined ? value : `${cookie}; ${value}`
      continue
    }
    headers.push(name, value)
  }
  if (cookie !== undefined) headers.push('cookie', cookie)
  if (authority !== undefined && !host) headers.unshift('host', authority)
  return { headers, method, path, expect, contentLength }
}

/**
 * What the base classes need of a connection; an HTTP/2 stream is never kept, closed or hijacked
 * by one. The stream stands in for the socket, so its 'drain' resumes the base pipeFrom().
 */
class StreamOwner implements ResponseOwner {
  readonly announcesKeepAlive = false
  constructor(readonly socket: Socket) {}
  responseFinished(): void {}
  canKeepAlive(): boolean {
    return true
  }
  hijack(): never {
    // client-request.ts turns vcl_recv's pipe into a pass for HTTP/2, as varnishd's cnt_recv does.
    throw new EdgeError('EDGE_ERR_H2_PIPE', 'an HTTP/2 stream cannot be piped')
  }
}

export class H2Request extends Http1Request {
  readonly #stream: ServerHttp2Stream
  readonly #expect: boolean
  #asked = false
  #body: PassThrough | undefined

  constructor(stream: ServerHttp2Stream, fields: ReturnType<typeof requestFields>, peer: PeerAddresses) {
    const length = fields.contentLength === undefined ? undefined : lengthOf(fields.contentLength)
    super(
      {
        method: fields.method,
        target: fields.path,
        version: '2.0',
        headers: fields.headers,
        contentLength: length,
        chunked: false,
        keepAlive: true,
        upgrade: false,
      },
      // The stream stands for the socket: the pipeline waits for its 'drain' and corks it.
      stream as unknown as Socket,
      peer,
      { pull() {} },
    )
    this.#stream = stream
    this.#expect = fields.expect
  }

  /** A body follows unless the HEADERS frame ended the stream (RFC 9113 §8.1). */
  override get hasBody(): boolean {
    return !this.#stream.endAfterHeaders
  }

  override get body(): Readable {
    // RFC 9110 §10.1.1 over HTTP/2: the interim 100 goes out when the body is wanted.
    if (this.#expect && !this.#asked && this.hasBody && !this.#stream.headersSent) {
      this.#asked = true
      this.#stream.additionalHeaders({ ':status': 100 })
    }
    // The stream's readable side, not the stream: a consumer that destroys its body when done
    // (undici does) must not reset the stream whose response is still to be written.
    if (this.#body === undefined) {
      const body = new PassThrough()
      const stream = this.#stream
      stream.pipe(body)
      stream.once('aborted', () => body.destroy(new Error('client reset the stream before sending the whole body')))
      this.#body = body
    }
    return this.#body
  }

  override get bodyIfStarted(): Readable | undefined {
    return this.#body
  }
}

/**
 * The response of one stream: the same calls as an HTTP/1.1 response, written as HEADERS
 * and DATA frames. Emits 'finish' when the last byte is handed to the stream, 'close' when
 * the stream went away (RST_STREAM, the session's end) before that.
 */
export class H2Response extends Http1Response {
  readonly #stream: ServerHttp2Stream
  readonly #head: boolean
  #noBody = false
  #remaining: number | undefined
  /** The Content-Length of the fields #fields read last. */
  #declared: number | undefined

  constructor(stream: ServerHttp2Stream, req: H2Request) {
    super(new StreamOwner(stream as unknown as Socket), req)
    this.#stream = stream
    this.#head = req.method === 'HEAD'
    stream.once('close', () => {
      if (!this.finished) this.emit('close')
    })
  }

  override send(status: number, headers: readonly string[], body?: Buffer | string, _reason?: string): void {
    const buf = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body) : body
    const noBody = this.#head || status < 200 || status === 204 || status === 304
    const h = this.#fields(status, headers)
    if (status >= 200 && status !== 204 && status !== 304) {
      // The length is ours to state, as over HTTP/1.1; for HEAD a declared one is kept.
      const declared = noBody && !buf?.length ? this.#declared : undefined
      h.push('content-length', String(declared ?? (buf ? buf.length : 0)))
    }
    this.statusCode = status
    this.headersSent = true
    const withBody = buf !== undefined && buf.length > 0 && !noBody
    if (!this.#respond(h, !withBody)) return
    if (withBody) {
      this.#stream.end(buf)
      this.bytesWritten += buf.length
      this.bytesSent += buf.length
    }
    this.#finish()
  }

  override sendFormatted(): void {
    throw new EdgeError('EDGE_ERR_H2_FORMATTED', 'a preformatted HTTP/1.1 answer cannot go out on an HTTP/2 stream')
  }

  override writeContinue(): void {
    if (!this.headersSent && !this.#stream.destroyed) this.#stream.additionalHeaders({ ':status': 100 })
  }

  override writeInterim(status: number, headers: readonly string[]): boolean {
    // RFC 9113 §8.6: no 101 on HTTP/2.
    if (this.headersSent || status < 100 || status > 199 || status === 101 || this.#stream.destroyed) return false
    try {
      this.#stream.additionalHeaders(headersObject(this.#fields(status, headers)))
      return true
    } catch {
      return false
    }
  }

  override writeHead(status: number, headers: readonly string[]): void {
    if (this.headersSent) throw new EdgeError('EDGE_ERR_HEADERS_SENT', 'headers already sent')
    this.#noBody = this.#head || status < 200 || status === 204 || status === 304
    const h = this.#fields(status, headers)
    const length = this.#declared
    if (length !== undefined) {
      h.push('content-length', String(length))
      if (!this.#noBody) this.#remaining = length
    }
    this.statusCode = status
    this.headersSent = true
    this.#respond(h, this.#noBody)
  }

  override write(chunk: Buffer | string): boolean {
    if (this.finished || this.#stream.destroyed) return false
    if (this.#noBody) return true
    let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    if (this.#remaining !== undefined) {
      // Past a declared length is a hostile backend's: cut, and the stream is reset at end().
      if (buf.length > this.#remaining) buf = buf.subarray(0, this.#remaining)
      this.#remaining -= buf.length
    }
    if (buf.length === 0) return true
    this.bytesWritten += buf.length
    this.bytesSent += buf.length
    return this.#stream.write(buf)
  }

  override end(chunk?: Buffer | string): void {
    if (this.finished) return
    if (chunk !== undefined) this.write(chunk)
    if (this.#remaining) {
      // Short of its declared length: RFC 9113 §8.1.1 makes that malformed; a reset tells the client.
      resetStream(this.#stream, constants.NGHTTP2_INTERNAL_ERROR)
    } else if (!this.#noBody && !this.#stream.destroyed) this.#stream.end()
    this.#finish()
  }

  /** A failed response (a backend gone mid-body): RST_STREAM, as varnishd's h2 transport does; the session stays. */
  override destroy(): void {
    resetStream(this.#stream, constants.NGHTTP2_INTERNAL_ERROR)
  }

  override connectionField(): string {
    return ''
  }

  #respond(headers: RawFields, endStream: boolean): boolean {
    if (this.#stream.destroyed) {
      this.finished = true
      return false
    }
    this.headBytes = 0
    // node:http2 takes a raw list (name, value, ...) as it is: no header object is built,
    // here or there (prepareResponseHeadersObject copies one).
    this.#stream.respond(headers as unknown as OutgoingHttpHeaders, { endStream })
    return true
  }

  #finish(): void {
    this.finished = true
    this.onFinish?.()
    this.emit('finish')
  }

  /**
   * The pipeline's flat field list as node:http2's raw list, lowercased, connection-specific
   * fields and Content-Length left out (the length the fields agree on is kept in #declared);
   * refused as the HTTP/1.1 writer refuses.
   */
  #fields(status: number, headers: readonly string[]): RawFields {
    const out: RawFields = [':status', status]
    let lengths: string[] | undefined
    for (let i = 0; i < headers.length; i += 2) {
      // toLowerCase gives back the same string when there is nothing to change.
      const name = (headers[i] as string).toLowerCase()
      const value = headers[i + 1] as string
      if (name === 'content-length') {
        if (lengths === undefined) lengths = [value]
        else lengths.push(value)
        continue
      }
      if (CONNECTION_SPECIFIC.has(name)) continue
      if (!TOKEN.test(name) || UNSAFE.test(value)) throw new InvalidResponseHeaderError(name)
      out.push(name, value)
    }
    this.#declared = lengths === undefined ? undefined : lengthOf(lengths)
    return out
  }
}

type RawFields = Array<string | number>

/** A raw list as node:http2's object, for the rare interim answer (additionalHeaders takes no list). */
function headersObject(list: RawFields): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i] as string
    const value = list[i + 1] as string
    const had = out[name]
    if (had === undefined) out[name] = value
    else if (Array.isArray(had)) had.push(value)
    else out[name] = [had as string, value]
  }
  return out
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/
const UNSAFE = /[\r\n\0]/

/** The Content-Length the values agree on, or undefined when malformed or conflicting. */
function lengthOf(values: readonly string[]): number | undefined {
  let length: number | undefined
  for (const v of values) {
    const value = v.trim()
    if (!DIGITS.test(value)) return undefined
    const n = Number(value)
    if (length !== undefined && length !== n) return undefined
    length = n
  }
  return length
}
