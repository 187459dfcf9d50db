import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'

/** RFC 9113 §3.4: the client's preface, which the connection's bytes start with. */
const PREFACE_LENGTH = 24
const FRAME_HEADER = 9
const DATA = 0x0
const HEADERS = 0x1
const RST_STREAM = 0x3
const SETTINGS = 0x4
const END_STREAM = 0x1
const ACK = 0x1

export interface FrameTapOptions {
  /**
   * Which SETTINGS ACK of the client's (1 = the first) nghttp2 must not see; 0 for none.
   * See session.ts: the ACK of the SETTINGS that carries h2_max_concurrent_streams.
   */
  readonly hiddenSettingsAck: number
  /** How many client-opened streams the tap remembers as not ended by the client. */
  readonly maxOpen: number
  /** A HEADERS frame opens a stream ID at or below one already used (RFC 9113 §5.1.1). */
  onStreamIdReused(id: number): void
}

/**
 * The socket as node:http2 reads it. nghttp2 drops a HEADERS frame whose stream ID is not
 * above the last one the client used, unless it still knows the stream (nghttp2_session.c,
 * session_on_request_headers_received: "we are very conservative here"), where RFC 9113
 * §5.1.1 makes it a connection error PROTOCOL_ERROR and varnishd ends the session so
 * (cache_http2_proto.c h2_procframe: "new stream ID < highest stream"). node:http2 tells
 * nothing of a dropped frame, so the client's frame headers are looked at here, before
 * nghttp2 reads them: nine bytes a frame, payloads skipped, no copy unless a frame header
 * is cut by a read. The bytes are passed on unchanged but for the one SETTINGS ACK that
 * `hiddenSettingsAck` names; after a reused stream ID nothing more is passed to nghttp2.
 *
 * node:http2 wraps what is not a native stream in its JSStreamSocket, which reads the
 * 'data' events of this object and writes through it: the methods below are what that
 * wrapper calls, each handed straight to the socket.
 */
export class FrameTap extends EventEmitter {
  readonly readable = true
  readonly writable = true
  readonly readableObjectMode = false
  readonly #socket: Socket
  readonly #opts: FrameTapOptions
  /** Bytes of the current frame's payload (or the preface) still to pass before a header. */
  #skip = PREFACE_LENGTH
  /** A frame header cut by a read, held until it is whole. */
  #held: Buffer | undefined
  #highest = 0
  /** Client streams opened and not ended by the client (END_STREAM or RST_STREAM): trailers may come. */
  readonly #open = new Set<number>()
  #acks = 0
  #stopped = false
  #corked = 0
  #out: Buffer[] = []
  #done: Array<(err?: Error | null) => void> = []

  constructor(socket: Socket, opts: FrameTapOptions) {
    super()
    this.#socket = socket
    this.#opts = opts
    socket.on('data', (chunk: Buffer) => this.feed(chunk))
    socket.on('end', () => this.emit('end'))
    socket.on('error', (err) => this.emit('error', err))
    socket.on('close', () => this.emit('close'))
  }

  /** The highest stream ID the client opened. */
  get highestStream(): number {
    return this.#highest
  }

  /** Bytes from the socket (or read before the session started), passed on to nghttp2. */
  feed(chunk: Buffer): void {
    if (this.#stopped) return
    let c = chunk
    if (this.#held !== undefined) {
      c = Buffer.concat([this.#held, chunk])
      this.#held = undefined
    }
    let from = 0
    let at = this.#skip
    while (at + FRAME_HEADER <= c.length) {
      const length = ((c[at] as number) << 16) | ((c[at + 1] as number) << 8) | (c[at + 2] as number)
      const type = c[at + 3] as number
      if (type === HEADERS || type === DATA || type === RST_STREAM || type === SETTINGS) {
        const flags = c[at + 4] as number
        const id = c.readUInt32BE(at + 5) & 0x7fffffff
        if (type === HEADERS) {
          if (!this.#headers(id, flags)) {
            this.#pass(c, from, at)
            // The rest is read and dropped, so the client gets the GOAWAY rather than a reset.
            this.#stopped = true
            this.#opts.onStreamIdReused(id)
            return
          }
        } else if (type === SETTINGS) {
          if ((flags & ACK) !== 0 && length === 0 && ++this.#acks === this.#opts.hiddenSettingsAck) {
            this.#pass(c, from, at)
            from = at + FRAME_HEADER
          }
        } else if (type === RST_STREAM || (flags & END_STREAM) !== 0) this.#open.delete(id)
      }
      at += FRAME_HEADER + length
    }
    if (at >= c.length) {
      this.#skip = at - c.length
      this.#pass(c, from, c.length)
    } else {
      this.#skip = 0
      this.#held = c.subarray(at)
      this.#pass(c, from, at)
    }
  }

  /** False when this HEADERS frame reuses a stream ID. */
  #headers(id: number, flags: number): boolean {
    // Even IDs and stream 0 are nghttp2's to refuse (PROTOCOL_ERROR there too).
    if (id === 0 || (id & 1) === 0) return true
    if (id > this.#highest) {
      this.#highest = id
      if ((flags & END_STREAM) === 0) {
        // Bounded: past maxOpen the oldest is forgotten (a client over its stream limit).
        if (this.#open.size >= this.#opts.maxOpen) this.#open.delete(this.#open.values().next().value as number)
        this.#open.add(id)
      }
      return true
    }
    // Trailers (RFC 9113 §8.1) on a stream the client has not ended are nghttp2's.
    if (!this.#open.has(id)) return false
    if ((flags & END_STREAM) !== 0) this.#open.delete(id)
    return true
  }

  #pass(c: Buffer, from: number, to: number): void {
    if (to > from) this.emit('data', from === 0 && to === c.length ? c : c.subarray(from, to))
  }

  // What node:http2's JSStreamSocket calls on the stream it wraps.
  pause(): this {
    this.#socket.pause()
    return this
  }
  resume(): this {
    this.#socket.resume()
    return this
  }
  // node:http2's writes come as cork, one write per buffer (three a response: HEADERS, the
  // DATA frame's header, the body), uncork: they go out as one buffer with one callback, not
  // through the socket's per-chunk machinery (which cost more than the rest of a cache hit).
  cork(): void {
    this.#corked++
  }
  uncork(): void {
    if (--this.#corked === 0) this.#flush()
  }
  write(chunk: Buffer, cb?: (err?: Error | null) => void): boolean {
    if (this.#corked === 0) return this.#socket.write(chunk, cb)
    this.#out.push(chunk)
    if (cb !== undefined) this.#done.push(cb)
    return true
  }
  #flush(): void {
    const out = this.#out
    if (out.length === 0) return
    const done = this.#done
    this.#out = []
    this.#done = []
    this.#socket.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out), (err) => {
      for (const cb of done) cb(err)
    })
  }
  end(cb?: () => void): this {
    this.#socket.end(cb)
    return this
  }
  destroy(): this {
    this.#socket.destroy()
    return this
  }
}
