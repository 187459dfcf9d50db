import { StoredObject } from '@edgestack/common'
import type { EsiProgram } from './esi/esi-program.js'

export type { BodyListener } from '@edgestack/common'

/**
 * One object of the router's cache: common's StoredObject (varnish's `objcore` + `object`,
 * shared with static-server's proxy_cache) with what only varnishd stores beside the body.
 */
export class CacheObject extends StoredObject {
  /** The body is stored gzip'ed (varnish's OF_GZIPED): gunzipped for clients that do not take gzip. */
  gzip = false
  /** The inflated length of a gzip body once known (varnish's OA_GZIPBITS length). */
  plainLength: number | undefined
  /** An ESI object varnishd would keep gzip'ed: its page goes gzip'ed to clients that take gzip. */
  esiGzip = false
  /** Stored with beresp.do_esi and holding ESI: how to assemble it (varnish's OA_ESIDATA). */
  esi: EsiProgram | undefined
  /** `--brotli` (edgestack): the gzip body's brotli copy, once made (gzip/brotli-copy.ts). */
  brotli: Buffer | undefined
  /** The head delivered with it: Content-Encoding br, a weak ETag. */
  brotliHeaders: string[] | undefined
  /**
   * A small gzip body inflated, kept (and counted by the store) after its first delivery to a
   * plain client, so the next ones cost about a plain hit (respond.ts). varnishd inflates on
   * every delivery; the client sees the same bytes.
   */
  plainCopy: Buffer | undefined
}
