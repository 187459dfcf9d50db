import zlib from 'node:zlib'
import type { CacheObject } from '../cache-object.js'
import { weakenedEtag } from '../deliver.js'
import type { BerespObj } from '../policy.js'
import { type GzipParams, varyAcceptEncoding } from './fetch-coding.js'

/** A stored block of length 0, not the last: what a sync flush writes on a byte boundary. */
const SYNC_MARK = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff])
/** An empty fixed-Huffman block marked last: what Z_FINISH writes after a sync flush. */
const LAST_BLOCK = Buffer.from([0x03, 0x00])

/**
 * varnishd's esi_gzip filter (cache_esi_fetch.c, VGZ "G F E") stores a `do_esi` page that came
 * gzip'ed (or with do_gzip) as gzip again while VEP reads it. For a page that turns out to hold
 * no ESI the object is then a plain gzip object (delivered gzip'ed to gzip clients, gunzipped
 * for the others), its deflate stream flushed where varnishd flushes it: a sync flush after the
 * header, the body, a sync flush, an empty last block, the trailer (e00028's 34 bytes for "bar").
 */
export function esiGzipBody(plain: Buffer, p: GzipParams): Buffer {
  // zlib's own header for the level: its XFL byte says fastest (1) or best (9) as varnishd's does.
  const header = zlib.gzipSync(Buffer.alloc(0), { level: p.level }).subarray(0, 10)
  const deflated = zlib.deflateRawSync(plain, { level: p.level, memLevel: p.memLevel, finishFlush: zlib.constants.Z_SYNC_FLUSH })
  const trailer = Buffer.allocUnsafe(8)
  trailer.writeUInt32LE(zlib.crc32(plain), 0)
  trailer.writeUInt32LE(plain.length % 2 ** 32, 4)
  return Buffer.concat([header, SYNC_MARK, deflated, LAST_BLOCK, trailer])
}

/**
 * vbf_stp_fetch's choice of esi_gzip for a `do_esi` page: it came gzip'ed and do_gunzip did not
 * take that away (do_gunzip counts only with http_gzip_support), or it came plain with do_gzip.
 * `ce` is the backend's Content-Encoding, read before fetchCoding changed the fields. Such a
 * page varies on Accept-Encoding (vfp_esi_gzip_init), added here.
 */
export function esiGzipFetch(beresp: BerespObj, ce: string | undefined, p: GzipParams): boolean {
  const esiGzip = (ce === 'gzip' && (beresp.doGunzip !== true || !p.support)) || (p.support && ce === undefined && beresp.doGzip === true)
  if (esiGzip) varyAcceptEncoding(beresp.headers)
  return esiGzip
}

/** What the store needs to count a body that changed size. */
export interface GrowingStore {
  grew(obj: CacheObject, n: number): void
}

/**
 * A complete `do_esi` object that came gzip'ed (esiGzip) and holds no ESI: its plain body is
 * stored gzip'ed as varnishd's would be, with Content-Encoding, Accept-Encoding in its Vary,
 * a weak ETag (vfp_esi_gzip_init) and its inflated length. A pass's
 * object has no store to tell.
 */
export function regzipWithoutEsi(obj: CacheObject, p: GzipParams, store?: GrowingStore): void {
  const plain = obj.body
  if (plain === undefined || !obj.esiGzip || obj.esi !== undefined || obj.gzip) return
  const gz = esiGzipBody(plain, p)
  obj.body = gz
  obj.gzip = true
  obj.plainLength = plain.length
  // The backend's length (a do_gzip page came plain) is not this body's.
  obj.contentLength = undefined
  const before = obj.headers.reduce((n, h) => n + h.length + 2, 0)
  obj.headers.push('Content-Encoding', 'gzip')
  varyAcceptEncoding(obj.headers)
  // Its bytes are ours, not the backend's: the ETag can only be weak (RFC2616_Weaken_Etag).
  const headers = obj.headers
  for (let i = 0; i < headers.length; i += 2) {
    if ((headers[i] as string).toLowerCase() !== 'etag') continue
    headers[i + 1] = weakenedEtag(headers[i + 1] as string)
    obj.etag = headers[i + 1]
  }
  const delta = gz.length - plain.length + obj.headers.reduce((n, h) => n + h.length + 2, 0) - before
  obj.size += delta
  store?.grew(obj, delta)
}
