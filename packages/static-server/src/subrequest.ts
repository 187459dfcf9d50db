import { EventEmitter } from 'node:events'
import type { Readable } from 'node:stream'
import { EdgeError } from '@edgestack/common'
import { RequestState, type ResponseSink } from './request-state.js'

/**
 * A subrequest's answer, kept from the client: its body goes to `sink` as the phases write it
 * (nginx's postponed output of a subrequest), its head nowhere (ngx_http_header_filter sends
 * nothing for r != r->main). The client leaving ends it as it ends the main request.
 */
export class CaptureResponse extends EventEmitter implements ResponseSink {
  statusCode = 0
  headersSent = false
  finished = false
  bytesWritten = 0
  bytesSent = 0
  headBytes = 0
  /** A subrequest's location does not speak for the client's connection (keep-alive.ts). */
  keepAliveField = ''
  /** Never written: nginx's headers filter (add_trailer) leaves subrequests alone. */
  trailers: ResponseSink['trailers'] = undefined
  /** The charset filter's recoding of this answer's body, as for a main request. */
  bodyFilter: ResponseSink['bodyFilter'] = undefined
  readonly done: Promise<void>
  #resolve!: () => void
  #noBody = false
  readonly #sink: (chunk: Buffer, status: number) => void
  readonly #parent: ResponseSink
  readonly #forwardEnd = () => this.emit('clientend')
  readonly #forwardClose = () => {
    this.emit('close')
    this.#finish()
  }

  constructor(parent: ResponseSink, sink: (chunk: Buffer, status: number) => void) {
    super()
    this.#parent = parent
    this.#sink = sink
    this.done = new Promise((r) => {
      this.#resolve = r
    })
    parent.on('clientend', this.#forwardEnd)
    parent.on('close', this.#forwardClose)
  }

  get socket(): ResponseSink['socket'] {
    return this.#parent.socket
  }

  send(status: number, _headers: readonly string[], body?: Buffer | string): void {
    this.#head(status)
    if (body !== undefined) this.write(body)
    this.#flushFilter()
    this.#finish()
  }

  sendFormatted(status: number, wire: Buffer, bodyBytes: number): void {
    this.#head(status)
    this.write(wire.subarray(wire.length - bodyBytes))
    this.#flushFilter()
    this.#finish()
  }

  writeContinue(): void {}

  writeHead(status: number): void {
    if (this.headersSent) throw new EdgeError('EDGE_ERR_HEADERS_SENT', 'headers already sent')
    this.#head(status)
  }

  write(chunk: Buffer | string): boolean {
    if (this.finished || this.#noBody) return true
    let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    if (this.bodyFilter) buf = this.bodyFilter.recode(buf)
    if (buf.length === 0) return true
    this.bytesWritten += buf.length
    this.#sink(buf, this.statusCode)
    return true
  }

  end(chunk?: Buffer | string): void {
    if (chunk !== undefined) this.write(chunk)
    this.#flushFilter()
    this.#finish()
  }

  async pipeFrom(body: Readable): Promise<void> {
    try {
      for await (const c of body) {
        if (this.finished) break
        this.write(c as Buffer)
      }
    } finally {
      this.#flushFilter()
      this.#finish()
    }
  }

  hijack(): never {
    throw new EdgeError('EDGE_ERR_SUBREQUEST_UPGRADE', 'a subrequest cannot take the connection')
  }

  /** The subrequest gives up: what it wrote stays, nothing more comes. */
  destroy(): void {
    this.#finish()
  }

  connectionField(): string {
    return ''
  }

  /** What the charset filter still holds (a sequence cut at a chunk's end) goes out last. */
  #flushFilter(): void {
    const filter = this.bodyFilter
    if (filter === undefined || this.finished || this.#noBody) return
    this.bodyFilter = undefined
    const tail = filter.recode(undefined)
    if (tail.length > 0) this.write(tail)
  }

  #head(status: number): void {
    this.statusCode = status
    this.headersSent = true
    this.#noBody = status < 200 || status === 204 || status === 304
  }

  #finish(): void {
    if (this.finished) return
    this.finished = true
    this.#parent.off('clientend', this.#forwardEnd)
    this.#parent.off('close', this.#forwardClose)
    this.emit('finish')
    this.#resolve()
  }
}

/**
 * ngx_http_subrequest: `uri` (decoded) and `args` through the phases as a GET of the same
 * client, one nesting level further down, its body handed to `sink` as it comes (with the
 * answer's status). Resolves
 * with the subrequest once its answer is over.
 */
export async function runSubrequest(parent: RequestState, uri: string, args: string, sink: (chunk: Buffer, status: number) => void): Promise<RequestState> {
  const res = new CaptureResponse(parent.res, sink)
  const sub = new RequestState(parent.req, res, parent.server, parent.host, uri, args)
  sub.method = 'GET'
  sub.isSubrequest = true
  // A subrequest may reach `internal` locations (sr->internal).
  sub.uriChanged = true
  sub.remoteAddr = parent.remoteAddr
  sub.remotePort = parent.remotePort
  sub.realIpSet = parent.realIpSet
  sub.limitReqSet = true
  sub.ssiShared = parent.ssiShared
  sub.subrequestsLeft = parent.subrequestsLeft - 1
  sub.runSubrequest = parent.runSubrequest
  sub.alert = parent.alert
  sub.logError = parent.logError
  await parent.runSubrequest(sub)
  if (!res.finished) await res.done
  return sub
}
