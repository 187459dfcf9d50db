import { Http1ParseError } from './errors.js'

enum State {
  Size,
  Data,
  DataEnd,
  Trailer,
  Done,
}

// chunk-size [ chunk-ext ] CRLF (RFC 9112 §7.1); extensions are read and ignored, bounded.
const SIZE_LINE = /^([0-9a-fA-F]{1,15})(?:[ \t]*;[^\r\n]*)?$/
const TRAILER_FIELD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:/
const MAX_LINE = 4096
const MAX_TRAILER = 16384
// Extensions carry no body bytes, so nothing else bounds them: a sender could stream them
// forever under any body-size limit (CVE-2024-22019 in Node's own parser). 16 KiB per body.
const MAX_EXTENSIONS = 16384

/**
 * Decodes a chunked request body incrementally; `feed` returns how many bytes of `buf` it used
 * so what follows the body (a pipelined request) stays with the caller.
 */
export class ChunkedDecoder {
  #state = State.Size
  #line = ''
  #remaining = 0
  #trailerBytes = 0
  #extensionBytes = 0
  readonly #onData: (chunk: Buffer) => void

  constructor(onData: (chunk: Buffer) => void) {
    this.#onData = onData
  }

  get done(): boolean {
    return this.#state === State.Done
  }

  feed(buf: Buffer): number {
    let i = 0
    while (i < buf.length && this.#state !== State.Done) {
      switch (this.#state) {
        case State.Size:
        case State.Trailer: {
          const lf = buf.indexOf(0x0a, i)
          const end = lf === -1 ? buf.length : lf + 1
          this.#line += buf.toString('latin1', i, end)
          i = end
          // Checked whether or not the line ended in this buffer: a long line can arrive whole.
          if (this.#line.length > MAX_LINE) throw new Http1ParseError('bad-request', 'chunk line too long')
          if (lf === -1) break
          if (!this.#line.endsWith('\r\n')) throw new Http1ParseError('bad-request', 'bare LF in chunked body')
          const line = this.#line.slice(0, -2)
          this.#line = ''
          if (this.#state === State.Size) this.#sizeLine(line)
          else this.#trailerLine(line)
          break
        }
        case State.Data: {
          const n = Math.min(this.#remaining, buf.length - i)
          this.#onData(buf.subarray(i, i + n))
          i += n
          this.#remaining -= n
          if (this.#remaining === 0) this.#state = State.DataEnd
          break
        }
        case State.DataEnd: {
          this.#line += String.fromCharCode(buf[i] as number)
          i++
          if (this.#line.length === 2) {
            if (this.#line !== '\r\n') throw new Http1ParseError('bad-request', 'chunk data not followed by CRLF')
            this.#line = ''
            this.#state = State.Size
          }
          break
        }
      }
    }
    return i
  }

  #sizeLine(line: string): void {
    const m = SIZE_LINE.exec(line)
    if (!m) throw new Http1ParseError('bad-request', 'invalid chunk size')
    this.#extensionBytes += line.length - (m[1] as string).length
    if (this.#extensionBytes > MAX_EXTENSIONS) throw new Http1ParseError('bad-request', 'chunk extensions too large')
    this.#remaining = Number.parseInt(m[1] as string, 16)
    // Past 2^53 the count would be rounded and our framing would differ from the sender's.
    if (this.#remaining > Number.MAX_SAFE_INTEGER) throw new Http1ParseError('bad-request', 'chunk size too large')
    this.#state = this.#remaining === 0 ? State.Trailer : State.Data
  }

  #trailerLine(line: string): void {
    if (line === '') {
      this.#state = State.Done
      return
    }
    this.#trailerBytes += line.length + 2
    if (this.#trailerBytes > MAX_TRAILER) throw new Http1ParseError('bad-request', 'trailer section too large')
    // Trailer fields are discarded (RFC 9110 §6.5.1 lets a recipient do so), never merged
    // into the header section where they could override framing or routing fields.
    if (!TRAILER_FIELD.test(line)) throw new Http1ParseError('bad-request', 'malformed trailer field')
  }
}
