import type { FileHandle } from 'node:fs/promises'
import type { VsmSet } from './vsm.js'

/** vsl_priv.h: the Log segment's head (marker, segsize, segment_n, offset[8]) before log[]. */
const HEAD_BYTES = 88
const SEGMENTS = 8
/** vsl_int.h: each record is two words (tag/length, vxid) and its data padded to a word. */
const OVERHEAD_WORDS = 2
/** SLT__Reserved (254) in the tag byte: "EEE" ends the log, "WWW" sends readers to log[0]. */
const ENDMARKER = ((254 << 24) | 0x454545) >>> 0
const WRAPMARKER = ((254 << 24) | 0x575757) >>> 0
/** vsl_reclen's default: longer records are cut, as varnishd cuts them. */
const MAX_RECORD = 255

/** The tags we write, by their number in varnish 7.1's tbl/vsl_tags.h. */
export const SLT = { Debug: 1, CLI: 3 } as const

/**
 * The transaction log segment (class `Log`) in varnish 7.1's format (cache/cache_shmlog.c):
 * records appended to `log[]` behind an end marker, eight segments whose start offsets readers
 * use to find their place, a wrap marker at the end. Writes are queued and go out in order;
 * each record's header word is written after its data, and the next end marker before it, so
 * a reader never reads a half-written record.
 */
export class VslLog {
  readonly #fd: FileHandle
  readonly #segsize: number
  readonly #words: number
  #ptr = 0
  // Begins at -8, as varnishd's: segment 0 of the first round.
  #segmentN = 0xfffffff8
  // Where each segment of the current round begins (a record boundary); -1: not begun.
  readonly #offsets: number[] = [0, -1, -1, -1, -1, -1, -1, -1]
  #queue: Promise<void> = Promise.resolve()

  private constructor(fd: FileHandle, bytes: number) {
    this.#fd = fd
    this.#words = Math.floor((bytes - HEAD_BYTES) / 4)
    this.#segsize = Math.floor(this.#words / SEGMENTS)
  }

  /** A `Log` segment of `bytes` (varnishd's -l) in `set`. */
  static async create(set: VsmSet, bytes: number): Promise<VslLog> {
    let log: VslLog | undefined
    await set.addSegment('Log', 'Log', bytes, async (fd) => {
      log = new VslLog(fd, bytes)
      await fd.write(log.#head(), 0, HEAD_BYTES, 0)
      await fd.write(word(ENDMARKER), 0, 4, HEAD_BYTES)
    })
    return log as VslLog
  }

  /** One record: `tag`, transaction id (0: none), text (cut at vsl_reclen, NUL-terminated). */
  write(tag: number, vxid: number, text: string): void {
    let data = Buffer.from(`${text}\0`, 'latin1')
    if (data.length > MAX_RECORD) {
      data = data.subarray(0, MAX_RECORD)
      data[MAX_RECORD - 1] = 0
    }
    const words = OVERHEAD_WORDS + Math.ceil(data.length / 4)
    const ops: Array<[Buffer, number]> = []
    if (this.#ptr + words + 1 >= this.#words) {
      // vsl_wrap: log[0] ends the log, then the wrap marker where we were.
      this.#segmentN += SEGMENTS - (this.#segmentN % SEGMENTS)
      ops.push([word(ENDMARKER), HEAD_BYTES], [word(WRAPMARKER), HEAD_BYTES + this.#ptr * 4])
      this.#ptr = 0
      this.#offsets.fill(-1)
      this.#offsets[0] = 0
    }
    const at = this.#ptr
    this.#ptr += words
    const body = Buffer.alloc((words - 1) * 4 + 4)
    body.writeUInt32LE((vxid & 0x3fffffff) >>> 0, 0)
    data.copy(body, 4)
    body.writeUInt32LE(ENDMARKER, (words - 1) * 4)
    ops.push([body, HEAD_BYTES + (at + 1) * 4])
    ops.push([word((((tag & 0xff) << 24) | data.length) >>> 0), HEAD_BYTES + at * 4])
    while (Math.floor(this.#ptr / this.#segsize) > this.#segmentN % SEGMENTS) {
      this.#segmentN = (this.#segmentN + 1) >>> 0
      this.#offsets[this.#segmentN % SEGMENTS] = this.#ptr
    }
    ops.push([this.#head(), 0])
    const fd = this.#fd
    this.#queue = this.#queue.then(async () => {
      for (const [buf, pos] of ops) await fd.write(buf, 0, buf.length, pos)
    })
    this.#queue.catch(() => {})
  }

  async close(): Promise<void> {
    await this.#queue.catch(() => {})
    await this.#fd.close()
  }

  #head(): Buffer {
    const b = Buffer.alloc(HEAD_BYTES, 0xff)
    b.write('VSLHEAD1', 0, 'latin1')
    b.writeBigInt64LE(BigInt(this.#segsize), 8)
    b.writeUInt32LE(this.#segmentN >>> 0, 16)
    b.writeUInt32LE(0, 20)
    for (let i = 0; i < SEGMENTS; i++) b.writeBigInt64LE(BigInt(this.#offsets[i] as number), 24 + i * 8)
    return b
  }
}

function word(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0, 0)
  return b
}
