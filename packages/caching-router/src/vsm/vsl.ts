import { write as fsWrite } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import type { VsmSet } from './vsm.js'

/** vsl_priv.h: the Log segment's head (marker, segsize, segment_n, offset[8]) before log[]. */
const HEAD_BYTES = 88
const SEGMENTS = 8
/** SLT__Reserved (254) in the tag byte: "EEE" ends the log, "WWW" sends readers to log[0]. */
const ENDMARKER = ((254 << 24) | 0x454545) >>> 0
const WRAPMARKER = ((254 << 24) | 0x575757) >>> 0
/** vsl_reclen's default (255 bytes with the NUL): longer records are cut, as varnishd cuts them. */
const MAX_TEXT = 254
/** The records buffered between two writes to the file; a full one is written at once. */
const STAGE_BYTES = 256 * 1024
/** How long a record may wait in the buffer: readers see it at most this late. */
const FLUSH_MS = 10
/** Buffers waiting for the file; past this (a stalled disk) records are dropped, never memory grown. */
const MAX_PENDING = 16

/** vsl_int.h: the marker bits of a record's second word. */
export const CLIENT = 1 << 30
export const BACKEND = 2 ** 31

interface Stage {
  buf: Buffer
  used: number
}

/**
 * The transaction log segment (class `Log`) in varnish 7.1's format (cache/cache_shmlog.c):
 * each record two words (tag << 24 | length, then the vxid with its client or backend marker)
 * and its NUL-terminated text padded to a word; an end marker after the last record; eight
 * segments whose start offsets (and the running `segment_n`) readers use to find their place
 * and to tell when the writer has lapped them; a wrap marker sends them back to log[0].
 *
 * Records are encoded straight into a staging buffer (a few property writes and one latin1
 * copy a record: no allocation, no system call on the request path) and the buffer goes to the
 * file every FLUSH_MS, or when full, with positioned writes that land in the page cache the
 * readers' shared mappings see. Each batch is written after the current end marker with a new
 * end marker behind it, then its first word over the old end marker, then the head: a reader
 * never sees a half-written record, nor a segment number ahead of the records.
 */
export class VslLog {
  readonly #fd: FileHandle
  readonly #segsize: number
  /** Words of log[] used: varnishd's vsl_end is segsize * 8 words in. */
  readonly #end: number
  readonly #stageBytes: number
  #ptr = 0
  // UINT_MAX - 7, as varnishd's: segment_n overflows on the first wrap, so readers meet it early.
  #segmentN = 0xfffffff8
  readonly #offsets: number[] = [0, -1, -1, -1, -1, -1, -1, -1]
  #stage: Stage
  readonly #spare: Buffer[] = []
  readonly #pending: Stage[] = []
  #writing = false
  #timer: NodeJS.Timeout | undefined
  #closed = false
  #drained: (() => void) | undefined
  /** Records dropped because the file fell behind (a stalled disk). */
  dropped = 0
  onError: (err: Error) => void = () => {}

  private constructor(fd: FileHandle, bytes: number) {
    this.#fd = fd
    this.#segsize = Math.floor((bytes - HEAD_BYTES) / 4 / SEGMENTS)
    this.#end = this.#segsize * SEGMENTS
    // A batch is at most half a segment: a reader a few segments behind is never lapped by one write.
    this.#stageBytes = Math.min(STAGE_BYTES, Math.floor(this.#segsize / 2) * 4)
    this.#stage = { buf: Buffer.allocUnsafe(this.#stageBytes + 4), used: 0 }
  }

  /** A `Log` segment of `bytes` (varnishd's -l, vsl_space) in `set`. */
  static async create(set: VsmSet, bytes: number): Promise<VslLog> {
    let log: VslLog | undefined
    await set.addSegment('Log', 'Log', bytes, async (fd) => {
      log = new VslLog(fd, bytes)
      await fd.write(log.#head(), 0, HEAD_BYTES, 0)
      await fd.write(word(ENDMARKER), 0, 4, HEAD_BYTES)
    })
    return log as VslLog
  }

  /**
   * One record: `tag` (vsl-tags.ts), `vxid` with its CLIENT or BACKEND marker (0: none), its
   * text as latin1 (cut at vsl_reclen).
   */
  write(tag: number, vxid: number, text: string): void {
    if (this.#closed) return
    if (text.length > MAX_TEXT) text = text.slice(0, MAX_TEXT)
    let s = this.#stage
    if (s.used + text.length + 12 > this.#stageBytes) s = this.#rotate()
    const buf = s.buf
    const at = s.used
    const n = buf.write(text, at + 8, 'latin1')
    buf[at + 8 + n] = 0
    const len = n + 1
    buf.writeUInt32LE(((tag << 24) | len) >>> 0, at)
    buf.writeUInt32LE(vxid >>> 0, at + 4)
    // The padding bytes of the last word: zero, as varnishd's memset log leaves them.
    for (let i = at + 8 + len; (i & 3) !== 0; i++) buf[i] = 0
    s.used = at + 8 + ((len + 3) & ~3)
    if (this.#timer === undefined) {
      this.#timer = setTimeout(this.#tick, FLUSH_MS)
      this.#timer.unref()
    }
  }

  /** The buffered records to the file now; resolves when every write so far is done. */
  async flush(): Promise<void> {
    if (this.#stage.used > 0) this.#rotate()
    if (!this.#writing && this.#pending.length === 0) return
    await new Promise<void>((resolve) => {
      const before = this.#drained
      this.#drained = () => {
        before?.()
        resolve()
      }
    })
  }

  async close(): Promise<void> {
    if (this.#closed) return
    await this.flush()
    this.#closed = true
    clearTimeout(this.#timer)
    await this.#fd.close()
  }

  readonly #tick = () => {
    this.#timer = undefined
    if (this.#stage.used > 0) this.#rotate()
  }

  #rotate(): Stage {
    const full = this.#stage
    if (this.#pending.length >= MAX_PENDING) {
      // The file is not keeping up: this batch is lost, the request path never waits.
      this.dropped++
      full.used = 0
      return full
    }
    this.#pending.push(full)
    this.#stage = { buf: this.#spare.pop() ?? Buffer.allocUnsafe(this.#stageBytes + 4), used: 0 }
    if (!this.#writing) this.#next()
    return this.#stage
  }

  #next(): void {
    const s = this.#pending.shift()
    if (s === undefined) {
      this.#writing = false
      const done = this.#drained
      this.#drained = undefined
      done?.()
      return
    }
    this.#writing = true
    const writes = this.#append(s)
    const step = (i: number) => {
      if (i === writes.length) {
        s.used = 0
        this.#spare.push(s.buf)
        this.#next()
        return
      }
      const [buf, off, len, pos] = writes[i] as Write
      fsWrite(this.#fd.fd, buf, off, len, pos, (err) => {
        if (err) this.onError(err)
        step(i + 1)
      })
    }
    step(0)
  }

  /** Where `s` goes in log[] (wrapping first when it does not fit), as the writes to make, in order. */
  #append(s: Stage): Write[] {
    const words = s.used / 4
    const out: Write[] = []
    if (this.#ptr + words + 1 >= this.#end) {
      // vsl_wrap: the next round starts at a multiple of 8; log[0] ends the log, then the wrap
      // marker where we were.
      this.#segmentN = (this.#segmentN + SEGMENTS - (this.#segmentN % SEGMENTS)) >>> 0
      this.#offsets[0] = 0
      out.push([word(ENDMARKER), 0, 4, HEAD_BYTES])
      if (this.#ptr !== 0) out.push([word(WRAPMARKER), 0, 4, HEAD_BYTES + this.#ptr * 4])
      out.push([this.#head(), 0, HEAD_BYTES, 0])
      this.#ptr = 0
    }
    const at = this.#ptr
    this.#ptr += words
    s.buf.writeUInt32LE(ENDMARKER, s.used)
    // Everything but the first word (the new end marker included), then the first word.
    out.push([s.buf, 4, s.used, HEAD_BYTES + (at + 1) * 4])
    out.push([s.buf, 0, 4, HEAD_BYTES + at * 4])
    while (Math.floor(this.#ptr / this.#segsize) > this.#segmentN % SEGMENTS) {
      this.#segmentN = (this.#segmentN + 1) >>> 0
      this.#offsets[this.#segmentN % SEGMENTS] = this.#ptr
    }
    out.push([this.#head(), 0, HEAD_BYTES, 0])
    return out
  }

  #head(): Buffer {
    const b = Buffer.alloc(HEAD_BYTES)
    b.write('VSLHEAD1', 0, 'latin1')
    b.writeBigInt64LE(BigInt(this.#segsize), 8)
    b.writeUInt32LE(this.#segmentN >>> 0, 16)
    for (let i = 0; i < SEGMENTS; i++) b.writeBigInt64LE(BigInt(this.#offsets[i] as number), 24 + i * 8)
    return b
  }
}

/** A positioned write: buffer, offset, length, file position. */
type Write = [Buffer, number, number, number]

function word(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0, 0)
  return b
}
