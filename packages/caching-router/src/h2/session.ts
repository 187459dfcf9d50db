import { constants, performServerHandshake, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Http1Request, Http1Response, Logger, PeerAddresses } from '@edgestack/common'
import type { Params } from '../params.js'
import { H2Request, H2Response, requestFields, resetByClient, resetStream } from './exchange.js'
import { FrameTap } from './frame-tap.js'
import { RapidResetBudget } from './rapid-reset.js'

export interface SessionDeps {
  params: Params
  onRequest(req: Http1Request, res: Http1Response): void
  logger: Logger
}

/**
 * One HTTP/2 connection, served by node:http2 (nghttp2): framing, HPACK, flow control and
 * most protocol checks RFC 9113 asks for (DATA on a closed stream, CONTINUATION floods,
 * SETTINGS/PING floods end in GOAWAY there), with varnishd's h2_* parameters as its
 * settings. What nghttp2 does otherwise than varnishd is done here: a stream ID that goes
 * backwards ends the session (frame-tap.ts), a stream over h2_max_concurrent_streams is
 * refused alone (below), rapid resets (rapid-reset.ts), the idle and send timeouts. Each
 * stream goes to the pipeline.
 */
export class H2Session {
  readonly session: ServerHttp2Session
  readonly #socket: Socket
  readonly #deps: SessionDeps
  readonly #peer: PeerAddresses
  readonly #startMs = Date.now()
  readonly #resets: RapidResetBudget
  #streams = 0
  /** The open streams, whose unsent bytes the send timeout watches. */
  readonly #live = new Set<ServerHttp2Stream>()
  /** When the session last had no stream open (timeout_idle), 0 while streams are open. */
  #idleSince = Date.now()
  #stallSince = 0
  #stallMark = -1
  #ending = false

  constructor(socket: Socket, bytes: Buffer, peer: PeerAddresses, deps: SessionDeps, onClosed: (s: H2Session) => void) {
    this.#deps = deps
    // A stream's request has no socket of its own: the connection's ends (VCL's remote.ip and
    // local.ip) go with the peer, the PROXY header's ends (client.ip, server.ip) as they are.
    this.#peer = peer.connection !== undefined ? peer : { ...peer, connection: { remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0, localAddress: socket.localAddress ?? '', localPort: socket.localPort ?? 0 } }
    const params = deps.params
    this.#resets = new RapidResetBudget(params.get('h2_rapid_reset'), params.get('h2_rapid_reset_limit'), params.get('h2_rapid_reset_period'))
    this.#socket = socket
    const tap = new FrameTap(socket, {
      hiddenSettingsAck: 2,
      maxOpen: params.get('h2_max_concurrent_streams') + 100,
      onStreamIdReused: (id) => this.#goaway(constants.NGHTTP2_PROTOCOL_ERROR, `H2: stream ${id}: new stream ID < highest stream`, true, tap.highestStream),
    })
    this.session = performServerHandshake(tap as unknown as Duplex, sessionOptions(params))
    // RFC 9113 §5.1.2 lets a stream over the advertised limit be refused alone (REFUSED_STREAM),
    // which varnishd does (h2_end_headers: "Hit maximum number of concurrent streams"), where
    // nghttp2 ends the session once the client acknowledged the limit and refuses the stream
    // only while the limit is pending. So the limit goes out in a SETTINGS frame of its own,
    // after the others, and the tap keeps the client's acknowledgement of it (its second) from
    // nghttp2: the limit stays pending there, every stream over it refused alone.
    this.session.settings({ maxConcurrentStreams: params.get('h2_max_concurrent_streams') })
    const session = this.session
    // h2_rx_window_low_water / h2_rx_window_increment: the connection's receive window is
    // kept at least the low water mark, as varnishd's h2_rx_data tops it up.
    session.setLocalWindowSize(params.get('h2_rx_window_low_water') + params.get('h2_rx_window_increment'))
    session.on('stream', this.#onStream)
    // A protocol error of the client's ends in GOAWAY from nghttp2; what is left is logged only.
    session.on('error', (err) => deps.logger.debug?.(`h2 session: ${err.message}`))
    session.on('close', () => onClosed(this))
    // What the connection's reader took already (the preface, maybe more) goes first.
    tap.feed(bytes)
  }

  get openStreams(): number {
    return this.#streams
  }

  #onStream = (stream: ServerHttp2Stream, _headers: unknown, _flags: number, raw: string[]): void => {
    stream.on('error', ignore)
    const started = Date.now()
    this.#streams++
    this.#live.add(stream)
    this.#idleSince = 0
    stream.once('close', () => {
      this.#live.delete(stream)
      if (--this.#streams === 0) this.#idleSince = Date.now()
      // A RST_STREAM the client sent (we sent none): varnishd's h2_rapid_reset check.
      if (resetByClient(stream) && !this.session.destroyed) {
        if (!this.#resets.allow(started, Date.now())) this.#goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM, 'H2: Hit RST limit. Closing session.')
      }
    })
    if (this.#ending) {
      resetStream(stream, constants.NGHTTP2_REFUSED_STREAM)
      return
    }
    const req = new H2Request(stream, requestFields(raw), this.#peer)
    req.connectionRequests = this.#streams
    req.connectionStartMs = this.#startMs
    this.#deps.onRequest(req, new H2Response(stream, req))
  }

  /**
   * The gateway's sweep, once a second: timeout_idle with no stream open closes the session
   * (GOAWAY NO_ERROR); output that made no progress for idle_send_timeout (a window that
   * never opens, a client that does not read) closes it too, as varnishd closes a session
   * whose send timed out.
   */
  check(now: number): void {
    if (this.session.destroyed) return
    const params = this.#deps.params
    if (this.#idleSince !== 0 && now - this.#idleSince >= params.get('timeout_idle') * 1000) {
      this.#goaway(constants.NGHTTP2_NO_ERROR, 'idle')
      return
    }
    const socket = this.#socket
    const pending = this.session.state.outboundQueueSize ?? 0
    let buffered = socket.writableLength
    if (buffered === 0 && this.#streams > 0) buffered = pending > 1 ? pending : this.#streamBytesWaiting()
    if (buffered === 0) {
      this.#stallSince = 0
      return
    }
    const flushed = socket.bytesWritten - socket.writableLength
    if (this.#stallSince === 0 || flushed !== this.#stallMark) {
      this.#stallSince = now
      this.#stallMark = flushed
      return
    }
    if (now - this.#stallSince >= params.get('idle_send_timeout') * 1000) {
      this.#deps.logger.info(`h2 session from ${this.#peer.remoteAddress}: no send progress for idle_send_timeout, closed`)
      this.#goaway(constants.NGHTTP2_NO_ERROR, 'send timeout', true)
    }
  }

  /** Bytes the streams hold that the peer's flow-control window does not let out yet. */
  #streamBytesWaiting(): number {
    let n = 0
    for (const s of this.#live) n += s.writableLength
    return n
  }

  /** Server shutdown: no new streams, the open ones finish; then the socket goes. */
  end(): void {
    this.#goaway(constants.NGHTTP2_NO_ERROR, 'shutdown')
  }

  destroy(): void {
    this.session.destroy()
  }

  #goaway(code: number, why: string, hard = false, lastStream = 0): void {
    if (this.#ending && !hard) return
    this.#ending = true
    if (code !== constants.NGHTTP2_NO_ERROR) this.#deps.logger.info(`h2 session from ${this.#peer.remoteAddress}: ${why}`)
    if (this.session.destroyed) return
    this.session.goaway(code, lastStream)
    // Open streams end first (node's graceful close), then the socket; one that an attacker
    // (or a reader that stopped) keeps open is cut a second later. The socket is read till
    // then, so the client gets the GOAWAY rather than a TCP reset over its unread bytes.
    this.session.close()
    if (hard || code !== constants.NGHTTP2_NO_ERROR) setTimeout(() => this.session.destroy(), 1000).unref()
  }
}

/** A stream's errors end in its 'close' (one function for every stream, not one each). */
function ignore(): void {}

/** varnishd's h2_* parameters as node:http2 session options (see README, "HTTP/2"). */
function sessionOptions(params: Params) {
  return {
    settings: {
      headerTableSize: params.get('h2_header_table_size'),
      // h2_max_concurrent_streams goes in a SETTINGS frame of its own (H2Session's constructor).
      initialWindowSize: params.get('h2_initial_window_size'),
      maxFrameSize: params.get('h2_max_frame_size'),
      // varnishd decodes a header list into the request's workspace, which http_req_size
      // bounds whatever h2_max_header_list_size says; nghttp2 is told the smaller of the two.
      maxHeaderListSize: Math.min(params.get('h2_max_header_list_size'), params.get('http_req_size')),
      enableConnectProtocol: false,
    },
    // http_max_hdr bounds the fields of an HTTP/2 request as of an HTTP/1 one (the pseudo-
    // fields take the request line's slots).
    maxHeaderListPairs: params.get('http_max_hdr'),
  }
}
