import { promisify } from 'node:util'
import zlib from 'node:zlib'
import type { CacheObject } from '../cache-object.js'
import { deliverHeadersOf, weakenedEtag } from '../deliver.js'
import { someCoding } from './accept-encoding.js'

const gunzip = promisify(zlib.gunzip)
const brotliCompress = promisify(zlib.brotliCompress)

/**
 * ngx_brotli's default `brotli_comp_level`: a copy is made once an object, so a middle level
 * (about gzip -9's size, far less CPU than brotli's 11) on zlib's thread pool, off the event loop.
 */
const QUALITY = 6

/**
 * `--brotli` (an edgestack extension; varnish 7.1 has no brotli): a client takes brotli when its
 * Accept-Encoding lists `br` with a q-value above 0 (RFC 9110 §12.5.3), read as the gzip test
 * (RFC2616_Req_Gzip) reads `gzip`, after vcl_recv, before the lookup's normalization.
 */
export function acceptsBrotli(headers: readonly string[]): boolean {
  return someCoding(headers, 'br', (c, q) => c === 'br' && q > 0)
}

/** The store side of a copy: counted in its bytes, evicting others as a growing object does. */
export interface BrotliStore {
  readonly maxBytes: number
  grew(obj: CacheObject, n: number): void
}

/**
 * Beside a complete gzip object (from the backend or `beresp.do_gzip`), one brotli copy of the
 * same representation: inflated and compressed on zlib's thread pool, then kept with the object
 * (and counted by the store) if the object is still stored. Until it is there, and for ESI
 * pages (assembled per delivery), brotli clients get gzip as before. An object whose inflated
 * size is unknown or larger than the store gets no copy: nothing is inflated past the storage
 * bound (the fetch's gzip check already stopped there).
 */
export function makeBrotliCopy(obj: CacheObject, store: BrotliStore): void {
  const body = obj.body
  if (!obj.gzip || obj.esi !== undefined || body === undefined || body.length === 0) return
  if (obj.plainLength === undefined || obj.plainLength > store.maxBytes) return
  const plainLength = obj.plainLength
  gunzip(body, { maxOutputLength: plainLength + 1 })
    .then((plain) =>
      brotliCompress(plain, {
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: QUALITY,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: plain.length,
        },
      }),
    )
    .then((br) => {
      // Evicted, purged or replaced meanwhile: nothing to keep it for.
      if (!obj.stored || obj.body !== body) return
      obj.brotli = br
      obj.brotliHeaders = brotliHead(deliverHeadersOf(obj))
      obj.size += br.length
      store.grew(obj, br.length)
    }, () => {
      // No copy, nothing else: the gzip body passed the fetch's own check and clients get it.
    })
}

/**
 * The delivery head of the brotli copy: `Content-Encoding: br`, and the ETag weakened, as
 * varnishd weakens it for any body it recodes (RFC2616_Weaken_Etag): the bytes are not the
 * origin's. Vary already names Accept-Encoding (a gzip object is stored with it).
 */
function brotliHead(headers: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    let value = headers[i + 1] as string
    const lower = name.toLowerCase()
    if (lower === 'content-encoding') value = 'br'
    else if (lower === 'etag') value = weakenedEtag(value)
    out.push(name, value)
  }
  return out
}
