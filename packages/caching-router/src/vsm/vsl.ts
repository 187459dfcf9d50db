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
/** "00" to "99" as ASCII pairs, for fixed6's fraction. */
const PAIRS = Uint8Array.from({ length: 200 }, (_, i) => 0x30 + (i % 2 === 0 ? Math.floor(i / 20) : (i >> 1) % 10))

/** The staging buffer's tail where `hold` puts a response head (http_resp_size's default is 32 KiB). */
const SCRATCH_BYTES = 32 * 1024

/** Scratch for int()'s digits, least significant first. */
const DIGITS = new Uint8Array(16)

/** The most a record takes: two words, the text, its NUL, padding. */
const RECORD_ROOM = 8 + MAX_TEXT + 1 + 3
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
  // The record being built (start .. finish).
  #buf: Buffer
  #rec = 0
  #pos = 0
  #limit = 0
  #heldText = ''
  #heldIn: Buffer | undefined
  #wholeCached = -1
  #wholeDigits = ''
  readonly #spare: Buffer[] = []
  readonly #pending: Stage[] = []
  #writing = false
  #timer: NodeJS.Timeout | undefined
  #closed = false
  #drained: (() => void) | undefined
  onError: (err: Error) => void = () => {}

  private constructor(fd: FileHandle, bytes: number) {
    this.#fd = fd
    this.#segsize = Math.floor((bytes - HEAD_BYTES) / 4 / SEGMENTS)
    this.#end = this.#segsize * SEGMENTS
    // A batch is at most half a segment: a reader a few segments behind is never lapped by one write.
    this.#stageBytes = Math.min(STAGE_BYTES, Math.floor(this.#segsize / 2) * 4)
    this.#stage = { buf: Buffer.allocUnsafe(this.#stageBytes + 4 + SCRATCH_BYTES), used: 0 }
    this.#buf = this.#stage.buf
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
    this.start(tag, vxid)
    this.str(text)
    this.finish()
  }

  /**
   * Starts a record whose text the next `str`/`int`/`fixed6` calls append (each cut at
   * vsl_reclen) and `finish` ends. The bytes go straight into the staging buffer: no string is
   * built for a record, no binding is called.
   */
  start(tag: number, vxid: number): void {
    let s = this.#stage
    // Room for the longest record: no check per appended piece.
    if (s.used + RECORD_ROOM > this.#stageBytes) s = this.#rotate()
    this.#buf = s.buf
    this.#rec = s.used
    this.#pos = s.used + 8
    this.#limit = s.used + 8 + MAX_TEXT
    const buf = s.buf
    const at = s.used
    buf[at + 2] = 0
    buf[at + 3] = tag
    buf[at + 4] = vxid & 0xff
    buf[at + 5] = (vxid >>> 8) & 0xff
    buf[at + 6] = (vxid >>> 16) & 0xff
    buf[at + 7] = vxid >>> 24
  }

  /** Appends `text` (from `from` to `to`) as latin1. */
  str(text: string, from = 0, to = text.length): void {
    const buf = this.#buf
    let p = this.#pos
    const end = Math.min(to, from + this.#limit - p)
    for (let i = from; i < end; i++) buf[p++] = text.charCodeAt(i)
    this.#pos = p
  }

  /**
   * Puts `text` (a response head) in the staging buffer's scratch tail in one native copy, so
   * that `held` appends pieces of it with copyWithin instead of a character loop.
   */
  hold(text: string): void {
    this.#heldText = text
    this.#heldIn = undefined
    if (text.length > SCRATCH_BYTES) return
    const buf = this.#stage.buf
    buf.write(text, this.#stageBytes + 4, SCRATCH_BYTES, 'latin1')
    this.#heldIn = buf
  }

  /** Appends the held text from `from` to `to`. */
  held(from: number, to: number): void {
    const buf = this.#buf
    // The staging buffer changed since hold (it filled): the text again, by characters.
    if (buf !== this.#heldIn) {
      this.str(this.#heldText, from, to)
      return
    }
    const p = this.#pos
    const end = Math.min(to, from + this.#limit - p)
    const base = this.#stageBytes + 4
    buf.copyWithin(p, base + from, base + end)
    this.#pos = p + (end - from)
  }

  /** Appends an integer's decimal digits. */
  int(n: number): void {
    if (!(n >= 0 && n <= 0x7fffffff) || n !== Math.floor(n)) {
      this.#bigInt(n)
      return
    }
    const buf = this.#buf
    let p = this.#pos
    if (n < 10) {
      if (p < this.#limit) {
        buf[p] = 0x30 + n
        this.#pos = p + 1
      }
      return
    }
    const d = DIGITS
    let k = 0
    while (n > 0) {
      const q = (n / 10) | 0
      d[k++] = 0x30 + n - q * 10
      n = q
    }
    if (p + k > this.#limit) return
    while (k > 0) buf[p++] = d[--k] as number
    this.#pos = p
  }

  // Past 2^31: a timestamp's seconds, which change once a second, so their digits are made once.
  #bigInt(n: number): void {
    if (n !== this.#wholeCached) {
      this.#wholeCached = n
      this.#wholeDigits = String(n)
    }
    this.str(this.#wholeDigits)
  }

  /** Appends `x` with six decimals (`%.6f`), as varnishd's timestamps and durations. */
  fixed6(x: number): void {
    if (!(x >= 0 && x < 1e12)) {
      this.str(x.toFixed(6))
      return
    }
    const micros = Math.round(x * 1e6)
    const whole = Math.floor(micros / 1e6)
    this.int(whole)
    if (this.#pos + 7 > this.#limit) return
    const buf = this.#buf
    const p = this.#pos
    buf[p] = 0x2e
    // Six digits as three pairs.
    let f = micros - whole * 1e6
    const hi = (f / 10000) | 0
    f -= hi * 10000
    const mid = (f / 100) | 0
    const lo = f - mid * 100
    buf[p + 1] = PAIRS[hi * 2] as number
    buf[p + 2] = PAIRS[hi * 2 + 1] as number
    buf[p + 3] = PAIRS[mid * 2] as number
    buf[p + 4] = PAIRS[mid * 2 + 1] as number
    buf[p + 5] = PAIRS[lo * 2] as number
    buf[p + 6] = PAIRS[lo * 2 + 1] as number
    this.#pos = p + 7
  }

  /** Ends the record started last: NUL, length, padding. */
  finish(): void {
    if (this.#closed) return
    const buf = this.#buf
    const at = this.#rec
    buf[this.#pos] = 0
    const len = this.#pos + 1 - (at + 8)
    buf[at] = len & 0xff
    buf[at + 1] = len >> 8
    // The padding bytes of the last word: zero, as varnishd's memset log leaves them.
    let p = this.#pos + 1
    while ((p & 3) !== 0) buf[p++] = 0
    this.#stage.used = p
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
      this.onError(new Error('the file fell behind: a batch of records was dropped'))
      full.used = 0
      return full
    }
    this.#pending.push(full)
    this.#stage = { buf: this.#spare.pop() ?? Buffer.allocUnsafe(this.#stageBytes + 4 + SCRATCH_BYTES), used: 0 }
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
