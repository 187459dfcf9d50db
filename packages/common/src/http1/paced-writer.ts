import type { Socket } from 'node:net'

/** A rate to send one response at (nginx's `limit_rate`, `limit_rate_after`). */
export interface Pace {
  /** Bytes per second; 0 sends as fast as the client reads. */
  readonly rate: number
  /** Bytes sent before the rate applies, the head included (nginx counts `c->sent`). */
  readonly after: number
  /** When the request started (ms since the epoch): nginx counts whole seconds from r->start_sec. */
  readonly startMs: number
}

/** nginx's sendfile_max_chunk default since 1.21.4: the most one wake-up sends. */
const MAX_CHUNK = 2 * 1024 * 1024

/**
 * The pacing of ngx_http_write_filter with limit_rate: at each wake-up the bytes the rate
 * allows since the request's start second, plus one second's worth, less what was already sent
 * past `after`, go to the socket; then it sleeps as long as the bytes just sent cost at the
 * rate. Waiting is a timer, never a busy loop, so other clients are not slowed. Bytes wait
 * here in order (the caller stops producing while `write()` says false); `whenFlushed()` is
 * when the last of them reached the socket, so the connection's next response cannot
 * overtake them.
 */
export class PacedWriter {
  readonly #socket: Socket
  readonly #pace: Pace
  readonly #queue: Buffer[] = []
  #queued = 0
  #sent = 0
  #timer: NodeJS.Timeout | undefined
  #waitingDrain = false
  /** write() said false: the producer waits for a 'drain' on the socket. */
  #refused = false
  #flushed: (() => void) | undefined
  #dead = false

  constructor(socket: Socket, pace: Pace) {
    this.#socket = socket
    this.#pace = pace
    socket.once('close', this.#onClose)
  }

  /** Queues `buf`; false when the producer should wait for the socket's 'drain'. */
  write(buf: Buffer): boolean {
    if (this.#dead) return false
    if (buf.length > 0) {
      this.#queue.push(buf)
      this.#queued += buf.length
      if (this.#timer === undefined && !this.#waitingDrain) this.#run()
    }
    if (this.#queued === 0) return !this.#socket.writableNeedDrain
    this.#refused = true
    return false
  }

  /** `done` once every queued byte was handed to the socket (at once when none waits). */
  whenFlushed(done: () => void): void {
    if (this.#queued === 0 || this.#dead) {
      this.#release()
      done()
    } else this.#flushed = done
  }

  readonly #onClose = (): void => {
    this.#dead = true
    clearTimeout(this.#timer)
    this.#queue.length = 0
    this.#queued = 0
  }

  readonly #run = (): void => {
    this.#timer = undefined
    this.#waitingDrain = false
    const { rate, after, startMs } = this.#pace
    while (this.#queued > 0 && !this.#dead) {
      const seconds = Math.floor(Date.now() / 1000) - Math.floor(startMs / 1000)
      const allowed = rate * (seconds + 1) - (this.#sent - after)
      if (allowed <= 0) {
        this.#timer = setTimeout(this.#run, Math.floor((-allowed * 1000) / rate) + 1)
        return
      }
      const before = this.#sent
      const ok = this.#send(Math.min(allowed, MAX_CHUNK))
      const delay = Math.floor(((Math.max(this.#sent - after, 0) - Math.max(before - after, 0)) * 1000) / rate)
      if (delay > 0) {
        this.#timer = setTimeout(this.#run, delay)
        return
      }
      if (!ok) {
        // The client is slower than the rate: nginx's c->sent only grows as the kernel takes bytes.
        this.#waitingDrain = true
        this.#socket.once('drain', this.#run)
        return
      }
    }
    if (this.#queued > 0 || this.#dead) return
    if (this.#refused) {
      this.#refused = false
      // The producer stopped on a refused write() and listens for the socket's 'drain'.
      if (!this.#socket.writableNeedDrain) process.nextTick(() => this.#socket.emit('drain'))
    }
    const done = this.#flushed
    if (done !== undefined) {
      this.#flushed = undefined
      this.#release()
      done()
    }
  }

  /** Hands up to `limit` queued bytes to the socket; false when the socket's buffer is full. */
  #send(limit: number): boolean {
    let ok = true
    let left = limit
    while (left > 0 && this.#queue.length > 0) {
      const head = this.#queue[0] as Buffer
      const piece = head.length <= left ? head : head.subarray(0, left)
      if (piece === head) this.#queue.shift()
      else this.#queue[0] = head.subarray(left)
      left -= piece.length
      this.#queued -= piece.length
      this.#sent += piece.length
      ok = this.#socket.write(piece)
    }
    return ok
  }

  #release(): void {
    clearTimeout(this.#timer)
    if (this.#waitingDrain) this.#socket.off('drain', this.#run)
    this.#socket.off('close', this.#onClose)
  }
}
