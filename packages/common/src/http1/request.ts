import type { Socket } from 'node:net'
import { Readable } from 'node:stream'
import { getHeader, getHeaderValues } from './headers.js'
import type { ParsedHead } from './parse-head.js'

export interface BodySource {
  /** Called when the body's consumer wants more bytes. */
  pull(): void
}

/**
 * One parsed request. The body, if any, is a Readable created on first access: bytes are
 * read from the socket only when someone consumes them, so a handler may still `hijack()`
 * the connection (pipe) with the body untouched.
 */
export class Http1Request {
  readonly method: string
  /** The request-target exactly as received. */
  readonly target: string
  readonly version: '1.0' | '1.1' | '2.0'
  /** Flat [name, value, ...] in received order and case. */
  readonly headers: string[]
  readonly contentLength: number | undefined
  readonly chunked: boolean
  readonly upgrade: boolean
  /** Whether the connection may carry another request; the server may clear it. */
  keepAlive: boolean
  /**
   * Bytes after the head (its body, a pipelined request) came with it: a client that sent
   * `Expect: 100-continue` is not waiting for `100 Continue` (varnishd's pipeline_b check).
   */
  followedByBytes = false
  /** This request's number on its connection, from 1 (nginx's c->requests). */
  connectionRequests = 1
  /** When the connection was accepted, ms since the epoch (nginx's c->start_time). */
  connectionStartMs = 0
  /**
   * This request's own client_body_timeout / send_timeout, when its handler chose one (nginx
   * takes both from the location); undefined keeps the server's.
   */
  bodyTimeoutMs: number | undefined
  sendTimeoutMs: number | undefined
  readonly remoteAddress: string
  readonly remotePort: number
  readonly localAddress: string
  readonly localPort: number
  /** The connection's own addresses when a PROXY header gave the ones above (nginx's view of the peer). */
  readonly viaProxy: PeerAddresses | undefined
  readonly socket: Socket
  #body: Readable | undefined
  readonly #source: BodySource

  constructor(head: ParsedHead, socket: Socket, peer: PeerAddresses, source: BodySource) {
    this.method = head.method
    this.target = head.target
    this.version = head.version
    this.headers = head.headers
    this.contentLength = head.contentLength
    this.chunked = head.chunked
    this.upgrade = head.upgrade
    this.keepAlive = head.keepAlive
    this.remoteAddress = peer.remoteAddress
    this.remotePort = peer.remotePort
    this.localAddress = peer.localAddress
    this.localPort = peer.localPort
    this.viaProxy = peer.connection
    this.socket = socket
    this.#source = source
  }

  get hasBody(): boolean {
    return this.chunked || (this.contentLength ?? 0) > 0
  }

  /** The request body; an empty stream when there is none. */
  get body(): Readable {
    if (!this.#body) {
      const source = this.#source
      this.#body = new Readable({ read: () => source.pull() })
      if (!this.hasBody) this.#body.push(null)
    }
    return this.#body
  }

  /** @internal the body stream if it was created. */
  get bodyIfStarted(): Readable | undefined {
    return this.#body
  }

  header(lowerName: string): string | undefined {
    return getHeader(this.headers, lowerName)
  }

  headerValues(lowerName: string): string[] {
    return getHeaderValues(this.headers, lowerName)
  }
}

export interface PeerAddresses {
  remoteAddress: string
  remotePort: number
  localAddress: string
  localPort: number
  /** The TCP connection's own addresses, when a PROXY header gave the ones above. */
  connection?: PeerAddresses
}
