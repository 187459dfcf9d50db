import { randomBytes } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import type { VscDoc } from './vsc-fields.js'
import type { VsmSet } from './vsm.js'

/**
 * vsc_priv.h's `struct vsc_head` as a 64-bit varnishd lays it out: `int ready` (padded to 8),
 * `uint64_t body_offset`, `uintptr_t doc_id`; the body follows at PRNDUP(24) = 24.
 */
const HEAD_BYTES = 24

/** What a counter segment reads its values from at each write, in its doc's field order. */
export type VscRead = () => ArrayLike<number>

/** A `Stat` segment: its file in the set, and the buffer its body is written from. */
export interface VscSegment {
  readonly file: string
  readonly fd: FileHandle
  readonly body: Buffer
  readonly read: VscRead
  writing: boolean
}

/**
 * VSC counters in varnish 7.1's format (common_vsc.c VRT_VSC_Alloc, libvarnishapi vsc.c
 * vsc_add_seg): per counter type one `StatDoc` segment holding vsctool.py's JSON (each
 * counter's `index` is its byte offset in the body), and per instance a `Stat` segment whose
 * head names the doc by `doc_id` and whose body is 64-bit little-endian counters. A doc is
 * listed before the first segment using it, as readers look docs up among the segments they
 * have already seen. The router's counters stay plain numbers on the hot path; `flush()`
 * copies them into the files with one positioned write per segment (see the README for why).
 */
export class VscWriter {
  readonly #set: VsmSet
  readonly #docs = new Map<VscDoc, Promise<bigint>>()
  readonly #segments = new Set<VscSegment>()
  readonly #onError: (err: Error) => void

  constructor(set: VsmSet, onError: (err: Error) => void) {
    this.#set = set
    this.#onError = onError
  }

  /** A `Stat` segment `ident` (`MAIN`, `SMA.s0`, `VBE.boot.default`) of `doc`'s counters. */
  async add(doc: VscDoc, ident: string, read: VscRead): Promise<VscSegment> {
    const docId = await this.#doc(doc)
    const bodyBytes = doc.fields.length * 8
    const body = Buffer.alloc(bodyBytes)
    fill(read, body)
    const { file, fd } = await this.#set.addSegment('Stat', ident, HEAD_BYTES + bodyBytes, async (h) => {
      // The whole segment written (not a sparse hole): a full disk fails here, at start.
      await h.write(Buffer.concat([head(docId), body]), 0, HEAD_BYTES + bodyBytes, 0)
    })
    const seg: VscSegment = { file, fd, body, read, writing: false }
    this.#segments.add(seg)
    return seg
  }

  /** The segment out of the index, then its file (a discarded VCL's backend). */
  async remove(seg: VscSegment): Promise<void> {
    this.#segments.delete(seg)
    await seg.fd.close().catch(() => {})
    await this.#set.removeSegment(seg.file)
  }

  /** Every segment's counters to its file; a segment whose last write is pending skips a turn. */
  flush(): void {
    for (const seg of this.#segments) {
      if (seg.writing) continue
      seg.writing = true
      fill(seg.read, seg.body)
      seg.fd.write(seg.body, 0, seg.body.length, HEAD_BYTES).then(
        () => {
          seg.writing = false
        },
        (err: Error) => {
          seg.writing = false
          this.#onError(err)
        },
      )
    }
  }

  async close(): Promise<void> {
    for (const seg of this.#segments) await seg.fd.close().catch(() => {})
    this.#segments.clear()
  }

  // One doc per type, however many segments are being made at once.
  #doc(doc: VscDoc): Promise<bigint> {
    let made = this.#docs.get(doc)
    if (made === undefined) {
      made = this.#makeDoc(doc)
      this.#docs.set(doc, made)
    }
    return made
  }

  async #makeDoc(doc: VscDoc): Promise<bigint> {
    // varnishd's doc_id is the descriptor's address; any id unique among the sets a reader sees.
    const id = randomBytes(6).readUIntBE(0, 6)
    const docId = BigInt(id)
    const json = Buffer.from(`${docJson(doc)}\0`, 'utf8')
    const length = HEAD_BYTES + Math.ceil(json.length / 8) * 8
    const { fd } = await this.#set.addSegment('StatDoc', id.toString(16), length, async (h) => {
      await h.write(Buffer.concat([head(docId), json]), 0, HEAD_BYTES + json.length, 0)
    })
    await fd.close()
    return docId
  }
}

function head(docId: bigint): Buffer {
  const b = Buffer.alloc(HEAD_BYTES)
  b.writeInt32LE(1, 0) // ready: 1 shown, 2 hidden (VRT_VSC_Hide)
  b.writeBigUInt64LE(BigInt(HEAD_BYTES), 8)
  b.writeBigUInt64LE(docId, 16)
  return b
}

function fill(read: VscRead, body: Buffer): void {
  const values = read()
  for (let i = 0; i < values.length && i * 8 < body.length; i++) {
    const v = values[i] as number
    body.writeBigUInt64LE(BigInt(v > 0 ? Math.floor(v) : 0), i * 8)
  }
}

/** vsctool.py's JSON for a .vsc file, with the fields readers assert on (vsc.c vsc_fill_point). */
export function docJson(doc: VscDoc): string {
  const elem: Record<string, object> = {}
  doc.fields.forEach((f, i) => {
    elem[f.name] = { type: f.type, ctype: 'uint64_t', level: f.level, oneliner: f.oneliner, format: f.format, index: i * 8, name: f.name, docs: '' }
  })
  return JSON.stringify({ version: '1', name: doc.name, oneliner: doc.oneliner, order: doc.order, docs: '', elements: doc.fields.length, elem })
}
