import type { Socket } from 'node:net'
import { parseProxyHeader } from '../proxy-protocol.js'
import { ChunkedDecoder } from './chunked.js'
import { Http1ParseError } from './errors.js'
import { type Http1Limits, parseRequestHead } from './parse-head.js'
import { Http1Request, type PeerAddresses } from './request.js'
import { Http1Response, type ResponseOwner } from './response.js'

export interface ConnectionOptions {
  limits: Http1Limits
  headerTimeoutMs: number
  keepAliveTimeoutMs: number
  bodyTimeoutMs: number
  sendTimeoutMs: number
  proxyProtocol: boolean
  /** See Http1ServerOptions.announceKeepAlive. */
  announceKeepAlive: boolean
  onRequest(req: Http1Request, res: Http1Response): void
  /** Bytes to send before closing on a protocol error; undefined closes silently. */
  errorResponse(err: Http1ParseError, peer: PeerAddresses): Buffer | string | undefined
  onClientError(err: Http1ParseError, peer: PeerAddresses, head: Buffer | undefined): void
  /** See Http1ServerOptions.onHttp2Preface. */
  onHttp2Preface: ((socket: Socket, bytes: Buffer, peer: PeerAddresses) => void) | undefined
}

/** RFC 9113 §3.4: the client connection preface, which no HTTP/1 request line can be. */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

enum State {
  Proxy,
  Head,
  Body,
  Responding,
  Closing,
  Hijacked,
}

/** Bytes of pipelined requests we hold while a response is in progress before pausing the socket. */
const PIPELINE_BUFFER = 65536
/** How long a connection whose request we refused may linger to take the rest of its bytes. */
const LINGER_MS = 5000
/**
 * A request body the handler did not read (a 405 to a POST, a cache hit for a GET with a body)
 * is read and thrown away when its Content-Length is at most this, so the connection stays
 * open as nginx and varnishd keep it; a larger or chunked one closes the connection after the
 * answer (RFC 9112 §9.6), which costs the client a reconnect rather than us an unbounded read.
 */
const DISCARD_MAX = 65536

/**
 * One client connection: reads request heads, hands each request to `onRequest`, and reads
 * the next one only once the previous response has finished, so pipelined responses can
 * never interleave. Deadlines are checked by the server's sweep (`checkDeadline`) rather
 * than a timer per request.
 */
export class Http1Connection implements ResponseOwner {
  readonly socket: Socket
  readonly #opts: ConnectionOptions
  #state: State
  #pending: Buffer | undefined
  #peer: PeerAddresses
  #req: Http1Request | undefined
  #res: Http1Response | undefined
  #bodyRemaining = 0
  #chunked: ChunkedDecoder | undefined
  #bodyDone = true
  #bodyWanted = false
  /** The answer is out and the rest of the request body is being read only to be dropped. */
  #discarding = false
  #looping = false
  #clientEnded = false
  #draining = false
  /** Epoch ms after which the sweep closes this connection; 0 = none. */
  deadline = 0
  #headStarted = false
  #awaitingDrain = false
  /** When the response bytes buffered for this client last made progress; 0 = nothing buffered. */
  #stallSince = 0
  #stallMark = 0
  readonly #onClosed: (c: Http1Connection) => void
  readonly #startMs = Date.now()
  #requests = 0

  constructor(socket: Socket, opts: ConnectionOptions, onClosed: (c: Http1Connection) => void) {
    this.socket = socket
    this.#opts = opts
    this.#onClosed = onClosed
    this.#state = opts.proxyProtocol ? State.Proxy : State.Head
    this.#peer = {
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
    }
    socket.setNoDelay(true)
    socket.on('data', this.#onData)
    socket.on('end', this.#onEnd)
    socket.on('error', this.#onError)
    socket.on('close', this.#onClose)
    this.deadline = Date.now() + opts.headerTimeoutMs
  }

  /**
   * nginx's stub_status states: `reading` a request head, `writing` from a head read until its
   * response ends (body, answer, an upgraded tunnel), `waiting` otherwise (kept alive, not yet
   * sent anything, lingering on close), as ngx_http_request.c moves ngx_stat_reading/writing.
   */
  get phase(): 'reading' | 'writing' | 'waiting' {
    if (this.#state === State.Body || this.#state === State.Responding || this.#state === State.Hijacked) return 'writing'
    if ((this.#state === State.Head || this.#state === State.Proxy) && this.#headStarted) return 'reading'
    return 'waiting'
  }

  get idle(): boolean {
    return (this.#state === State.Head || this.#state === State.Proxy) && !this.#headStarted
  }

  /** Server shutdown: idle connections close now, busy ones after their current response. */
  drain(): void {
    this.#draining = true
    if (this.#req) this.#req.keepAlive = false
    if (this.idle) this.socket.end()
  }

  checkDeadline(now: number): void {
    if (this.#sendStalled(now)) {
      this.socket.destroy()
      return
    }
    if (this.deadline === 0 || now < this.deadline) return
    // An answer still flowing out (send() hands a whole body to the socket at once) is not
    // idleness: the keep-alive and linger times start once it drained, and the send timeout
    // above cuts one that stopped moving.
    if (this.socket.writableLength > 0 && (this.idle || this.#state === State.Closing)) {
      this.deadline = now + (this.#state === State.Closing ? LINGER_MS : this.#opts.keepAliveTimeoutMs)
      return
    }
    if (this.#state === State.Head && this.#headStarted) {
      this.#fail(new Http1ParseError('header-timeout', 'client sent its request head too slowly'))
    } else if (this.#state === State.Body) {
      const err = new Http1ParseError('body-timeout', 'client stopped sending its request body')
      this.#abortBody(err)
      this.#fail(err)
    } else {
      this.socket.destroy()
    }
  }

  #onData = (chunk: Buffer): void => {
    switch (this.#state) {
      case State.Proxy:
      case State.Head:
        this.#pending = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk
        this.#loop()
        return
      case State.Body:
        this.#pending = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk
        if (this.#bodyWanted) {
          this.#feedBody()
          this.#waitForBody()
        } else this.socket.pause()
        return
      case State.Responding:
        this.#pending = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk
        if (this.#pending.length > PIPELINE_BUFFER) this.socket.pause()
        return
      default:
        // Closing: whatever the client still sends is discarded while we linger.
        return
    }
  }

  #onEnd = (): void => {
    // A client may half-close after pipelining requests: answer what it sent, then close.
    this.#clientEnded = true
    // A handler relaying a long answer may treat the FIN as the client leaving (nginx's
    // proxy does, unless proxy_ignore_client_abort): it is told, and decides.
    if (this.#res && !this.#res.finished) this.#res.emit('clientend')
    if (this.#state === State.Body && !this.#bodyDone) {
      this.#abortBody(new Error('client closed before sending the whole body'))
      this.#close()
      return
    }
    // A request head cut short by the FIN can never complete: close now, without an answer,
    // as nginx and varnishd do, rather than hold the connection until the header timeout.
    // Complete pipelined requests may still wait for the socket to drain: answer them first.
    if ((this.#state === State.Head || this.#state === State.Proxy) && !this.#awaitingDrain) this.#close()
    else if (this.#state === State.Closing) this.socket.end()
  }

  #onError = (): void => {
    // ECONNRESET and friends: the client is gone; 'close' follows and cleans up.
    this.socket.destroy()
  }

  #onClose = (): void => {
    this.deadline = 0
    const res = this.#res
    if (res && !res.finished) res.emit('close')
    this.#req?.bodyIfStarted?.destroy()
    this.#onClosed(this)
  }

  /** Parses as many complete request heads as are buffered, one request at a time. */
  #loop(): void {
    if (this.#looping) return
    this.#looping = true
    try {
      while (this.#pending && this.#pending.length > 0) {
        if (this.#state === State.Proxy) {
          if (!this.#readProxyHeader()) return
          continue
        }
        if (this.#state !== State.Head) return
        if (this.socket.writableNeedDrain) {
          this.#awaitDrain()
          return
        }
        if (!this.#readHead()) return
      }
    } finally {
      this.#looping = false
    }
    if (this.#clientEnded && this.#state === State.Head) this.#close()
  }

  /**
   * A client that pipelines requests but does not read the answers must not make us buffer
   * them without bound: the next request is read only once the socket has drained, as nginx
   * reads the next pipelined request only after the response was sent. Meanwhile the send
   * timeout, not the keep-alive one, watches the client.
   */
  #awaitDrain(): void {
    this.socket.pause()
    this.deadline = 0
    if (this.#awaitingDrain) return
    this.#awaitingDrain = true
    this.socket.once('drain', () => {
      this.#awaitingDrain = false
      if (this.#state !== State.Head) return
      this.deadline = Date.now() + this.#opts.keepAliveTimeoutMs
      this.socket.resume()
      this.#loop()
    })
  }

  /** nginx/varnish `send_timeout`: a response that made no progress for so long is given up. */
  #sendStalled(now: number): boolean {
    const s = this.socket
    if (s.writableLength === 0) {
      this.#stallSince = 0
      return false
    }
    // Bytes the kernel took: bytesWritten counts what is still buffered too.
    const flushed = s.bytesWritten - s.writableLength
    if (this.#stallSince === 0 || flushed !== this.#stallMark) {
      this.#stallSince = now
      this.#stallMark = flushed
      return false
    }
    return now - this.#stallSince >= (this.#req?.sendTimeoutMs ?? this.#opts.sendTimeoutMs)
  }

  #readProxyHeader(): boolean {
    const pending = this.#pending as Buffer
    const r = parseProxyHeader(pending)
    if (r.kind === 'incomplete') return false
    if (r.kind === 'invalid') {
      // A malformed PROXY header closes the connection without an answer, as varnishd does.
      this.#opts.onClientError(new Http1ParseError('proxy-protocol', r.reason), this.#peer, undefined)
      this.socket.destroy()
      this.#pending = undefined
      return false
    }
    if (r.header.command === 'PROXY' && r.header.source && r.header.destination) {
      this.#peer = {
        remoteAddress: r.header.source.address,
        remotePort: r.header.source.port,
        localAddress: r.header.destination.address,
        localPort: r.header.destination.port,
        // nginx keeps the connection's own addresses ($remote_addr) beside the header's
        // ($proxy_protocol_addr) until realip says otherwise; varnishd takes the header's.
        connection: this.#peer,
      }
    }
    this.#state = State.Head
    this.#pending = pending.length > r.length ? pending.subarray(r.length) : undefined
    return true
  }

  #readHead(): boolean {
    let pending = this.#pending as Buffer
    // RFC 9112 §2.2: ignore empty lines (CRLF, or a bare LF as nginx and varnishd take it)
    // before the request line.
    let start = 0
    for (;;) {
      if (pending[start] === 0x0a) start += 1
      else if (pending[start] === 0x0d && pending[start + 1] === 0x0a) start += 2
      else break
    }
    if (start > 0) {
      pending = pending.subarray(start)
      this.#pending = pending.length > 0 ? pending : undefined
      if (!this.#pending) return false
    }
    if (this.#requests === 0 && this.#opts.onHttp2Preface !== undefined && pending[0] === 0x50) {
      const n = Math.min(pending.length, H2_PREFACE.length)
      if (pending.compare(H2_PREFACE, 0, n, 0, n) === 0) {
        if (n < H2_PREFACE.length) return false
        this.#handOverHttp2(pending)
        return false
      }
    }
    if (!this.#headStarted) {
      this.#headStarted = true
      this.deadline = Date.now() + this.#opts.headerTimeoutMs
    }
    const { limits } = this.#opts
    const found = findHeadEnd(pending, limits.maxHeadBytes)
    if (found === undefined) {
      const lineEnd = pending.indexOf(0x0a)
      if ((lineEnd === -1 ? pending.length : lineEnd) > limits.maxRequestLineBytes + 1) {
        this.#fail(new Http1ParseError('request-line-too-long', 'request line too long'))
      } else if (pending.length >= limits.maxHeadBytes) {
        this.#fail(new Http1ParseError('headers-too-large', 'request head too large'))
      }
      return false
    }
    const [end, after] = found
    let head: ReturnType<typeof parseRequestHead>
    try {
      head = parseRequestHead(pending.toString('latin1', 0, end), limits)
    } catch (err) {
      if (err instanceof Http1ParseError) this.#fail(err)
      else throw err
      return false
    }
    this.#headStarted = false
    this.deadline = 0
    this.#pending = pending.length > after ? pending.subarray(after) : undefined
    const req = new Http1Request(head, this.socket, this.#peer, this)
    req.followedByBytes = this.#pending !== undefined
    req.connectionRequests = ++this.#requests
    req.connectionStartMs = this.#startMs
    const res = new Http1Response(this, req)
    this.#req = req
    this.#res = res
    if (this.#draining) req.keepAlive = false
    this.#bodyWanted = false
    this.#discarding = false
    if (req.hasBody) {
      this.#state = State.Body
      this.#bodyDone = false
      this.#bodyRemaining = head.contentLength ?? 0
      this.#chunked = head.chunked ? new ChunkedDecoder((c) => this.#pushBody(c)) : undefined
    } else {
      this.#state = State.Responding
      this.#bodyDone = true
    }
    try {
      this.#opts.onRequest(req, res)
    } catch (err) {
      // A handler bug: the client gets a bare 500, never our error's text (it may hold internals);
      // the operator gets the stack on stderr.
      process.emitWarning(err instanceof Error ? err : new Error(String(err)), 'HandlerError')
      if (!res.headersSent) res.send(500, ['Content-Type', 'text/plain'], 'Internal Server Error\n')
      else this.socket.destroy()
    }
    // The handler may have finished synchronously, which moved us back to Head.
    return (this.#state as State) === State.Head
  }

  /** BodySource: the body's consumer wants bytes. */
  pull(): void {
    this.#bodyWanted = true
    if (this.#state !== State.Body) return
    this.#feedBody()
    if (this.#state === State.Body) this.socket.resume()
    this.#waitForBody()
  }

  /**
   * While the consumer wants body bytes and none are buffered, the client has
   * `bodyTimeoutMs` between two reads (nginx `client_body_timeout`); a consumer that is slow
   * to read is not the client's fault, so no deadline runs then.
   */
  #waitForBody(): void {
    if (this.#state !== State.Body) return
    this.deadline = this.#bodyWanted ? Date.now() + (this.#req?.bodyTimeoutMs ?? this.#opts.bodyTimeoutMs) : 0
  }

  #pushBody(chunk: Buffer): void {
    if (this.#discarding) return
    const body = this.#req?.bodyIfStarted
    if (body && !body.push(chunk)) {
      this.#bodyWanted = false
      this.deadline = 0
      this.socket.pause()
    }
  }

  #feedBody(): void {
    const pending = this.#pending
    if (!pending || pending.length === 0) return
    let used: number
    try {
      if (this.#chunked) {
        used = this.#chunked.feed(pending)
        if (this.#chunked.done) this.#bodyDone = true
      } else {
        used = Math.min(this.#bodyRemaining, pending.length)
        this.#pushBody(pending.subarray(0, used))
        this.#bodyRemaining -= used
        if (this.#bodyRemaining === 0) this.#bodyDone = true
      }
    } catch (err) {
      this.#abortBody(err as Error)
      this.#fail(err as Http1ParseError)
      return
    }
    this.#pending = pending.length > used ? pending.subarray(used) : undefined
    if (this.#bodyDone) {
      this.#req?.bodyIfStarted?.push(null)
      this.#state = State.Responding
      this.deadline = 0
      if (this.#res?.finished) this.responseFinished(this.#res)
    }
  }

  /**
   * Ends a body that will never complete. Like Node's http, the error is only emitted to a
   * consumer that listens for it: a handler that never looked at errors must not crash the
   * process because one client sent a broken body.
   */
  #abortBody(err: Error): void {
    const body = this.#req?.bodyIfStarted
    if (!body) return
    body.destroy(body.listenerCount('error') > 0 ? err : undefined)
  }

  /** ResponseOwner: the current response handed its last byte to the socket. */
  responseFinished(res: Http1Response): void {
    if (res !== this.#res || this.#state === State.Hijacked || this.#state === State.Closing) return
    const req = this.#req as Http1Request
    if (this.#state === State.Body) {
      if (!this.#discarding && req.keepAlive && !this.#draining && this.#discardable()) {
        // Answered before the body was read: read the rest and drop it, then the next request.
        this.#discarding = true
        this.#abortBody(new Error('the response was sent before the request body was read'))
        this.#bodyWanted = true
        this.#feedBody()
        if (this.#state === State.Body) {
          this.socket.resume()
          this.#waitForBody()
        }
        return
      }
      if (this.#discarding) return
      // Answered before a large or chunked body was read (413, a redirect): RFC 9112 §9.6 lets
      // us close rather than read an unbounded body. Linger so the client can read the answer.
      this.#close()
      return
    }
    if (!req.keepAlive || this.#draining) {
      this.#close()
      return
    }
    this.#req = undefined
    this.#res = undefined
    this.#state = State.Head
    this.deadline = Date.now() + this.#opts.keepAliveTimeoutMs
    if (this.socket.isPaused()) this.socket.resume()
    if (this.#looping) return
    if (this.#pending) this.#loop()
    // The client half-closed and no complete request is left: we are done too.
    if (this.#clientEnded && this.#state === State.Head) this.#close()
  }

  /** ResponseOwner: see Http1ServerOptions.announceKeepAlive. */
  get announcesKeepAlive(): boolean {
    return this.#opts.announceKeepAlive
  }

  /** ResponseOwner: whether the response being written may leave the connection open. */
  canKeepAlive(req: Http1Request): boolean {
    return req.keepAlive && !this.#draining && (this.#state !== State.Body || this.#discardable())
  }

  /** What is left of the request body may be read and dropped (see DISCARD_MAX). */
  #discardable(): boolean {
    return this.#chunked === undefined && this.#bodyRemaining <= DISCARD_MAX
  }

  /** ResponseOwner: pipe mode; the connection stops being HTTP. */
  hijack(res: Http1Response): { socket: Socket; rest: Buffer } {
    if (res !== this.#res) throw new Error('hijack of a response that is not current')
    this.#state = State.Hijacked
    this.deadline = 0
    this.socket.off('data', this.#onData)
    this.socket.off('end', this.#onEnd)
    this.socket.off('error', this.#onError)
    this.socket.off('close', this.#onClose)
    this.#onClosed(this)
    const rest = this.#pending ?? Buffer.alloc(0)
    this.#pending = undefined
    return { socket: this.socket, rest }
  }

  /**
   * The connection's first bytes are the HTTP/2 preface: it leaves this HTTP/1 reader as a
   * hijacked one does, with every byte read so far, preface included (varnishd looks for the
   * preface only at a session's start, cache_http1_fsm.c H2_prism_complete).
   */
  #handOverHttp2(bytes: Buffer): void {
    this.#state = State.Hijacked
    this.deadline = 0
    this.#pending = undefined
    this.socket.off('data', this.#onData)
    this.socket.off('end', this.#onEnd)
    this.socket.off('error', this.#onError)
    this.socket.off('close', this.#onClose)
    this.socket.pause()
    this.#onClosed(this)
    ;(this.#opts.onHttp2Preface as NonNullable<ConnectionOptions['onHttp2Preface']>)(this.socket, bytes, this.#peer)
  }

  #fail(err: Http1ParseError): void {
    // What was read of an unfinished head, so a daemon can log the refusal with it (nginx logs
    // its 400s with the request line and the fields it read).
    this.#opts.onClientError(err, this.#peer, this.#state === State.Head ? this.#pending : undefined)
    const answer = this.#opts.errorResponse(err, this.#peer)
    this.#pending = undefined
    if (answer === undefined || this.#res?.headersSent) {
      this.socket.destroy()
      return
    }
    this.socket.write(answer)
    this.#close()
  }

  /** Ends our side and lets the client read what we sent; the sweep destroys a lingerer. */
  #close(): void {
    this.#state = State.Closing
    this.#pending = undefined
    this.socket.end()
    if (this.socket.isPaused()) this.socket.resume()
    this.deadline = Date.now() + LINGER_MS
  }
}

/**
 * Where the head in `buf` ends: the first empty line, each line ended by CRLF or by a bare LF
 * (RFC 9112 §2.2 lets a recipient take LF alone; nginx and varnishd do). Returns the length of
 * the head without its last line end, and the offset of the first byte after the empty line;
 * undefined while no empty line has arrived within `max` bytes. The head is parsed and every
 * field re-serialized with CRLF before it goes anywhere, so the next hop never sees a bare LF.
 */
function findHeadEnd(buf: Buffer, max: number): [end: number, after: number] | undefined {
  let lf = buf.indexOf(0x0a)
  while (lf !== -1 && lf < max) {
    const next = buf[lf + 1]
    let after = -1
    if (next === 0x0a) after = lf + 2
    else if (next === 0x0d && buf[lf + 2] === 0x0a) after = lf + 3
    if (after !== -1) {
      if (after > max) return undefined
      return [lf > 0 && buf[lf - 1] === 0x0d ? lf - 1 : lf, after]
    }
    lf = buf.indexOf(0x0a, lf + 1)
  }
  return undefined
}
