import { CacheObject } from '../cache-object.js'
import { storableHeaders } from '../deliver.js'
import { esiGzipFetch, regzipWithoutEsi } from '../gzip/esi-gzip.js'
import { BodyCoder, contentEncoding, fetchCoding, type GzipParams } from '../gzip/fetch-coding.js'
import type { BerespObj, BereqObj } from '../policy.js'
import type { EsiProgram } from './esi-program.js'

/** Who parses the collected body (BackendFetch.parseEsi: VEP with the features and counters). */
export interface EsiParser {
  parseEsi(body: Buffer, url: string): EsiProgram | undefined
}

/**
 * A pass whose response has `beresp.do_esi` (varnishd makes it a private object, parses it as
 * it arrives and assembles it like a stored page): the body is collected into an object no
 * lookup finds, inflated first when it came gzip'ed, bounded by the storage size, then parsed;
 * `done` gets it complete, or an error (too large, bad gzip, a broken fetch).
 */
export class PassEsiBody {
  readonly obj: CacheObject
  readonly #coder: BodyCoder | undefined
  readonly #limit: number
  readonly #gzip: GzipParams
  readonly #url: string
  readonly #parser: EsiParser
  readonly #done: (obj: CacheObject | undefined) => void
  #over = false

  constructor(bereq: BereqObj, beresp: BerespObj, gzip: GzipParams, limit: number, parser: EsiParser, done: (obj: CacheObject | undefined) => void) {
    this.obj = new CacheObject(bereq.xid, '')
    this.#limit = limit
    this.#gzip = gzip
    this.#url = bereq.url
    this.#parser = parser
    this.#done = done
    const ce = contentEncoding(beresp.headers)
    const coding = fetchCoding(beresp, beresp.doGzip === true, beresp.doGunzip === true, true, gzip)
    this.obj.esiGzip = esiGzipFetch(beresp, ce, gzip)
    this.obj.setHead(beresp.status, beresp.reason, storableHeaders(beresp.headers))
    this.#coder =
      coding === 'gunzip'
        ? new BodyCoder('gunzip', gzip, limit, (c) => this.obj.append(c), () => {}, (err) => (err ? this.#fail() : this.#finish()))
        : undefined
  }

  /** False when zlib's buffer is full: `onDrain` then. */
  data(c: Buffer): boolean {
    if (this.#over) return true
    if (this.#coder !== undefined) return this.#coder.write(c)
    if (this.obj.received + c.length > this.#limit) {
      this.#fail()
      return true
    }
    this.obj.append(c)
    return true
  }

  onDrain(fn: () => void): void {
    this.#coder?.onDrain(fn)
  }

  end(): void {
    if (this.#over) return
    if (this.#coder !== undefined) this.#coder.end()
    else this.#finish()
  }

  error(): void {
    this.#coder?.destroy()
    this.#fail()
  }

  #finish(): void {
    if (this.#over) return
    this.#over = true
    this.obj.complete()
    this.obj.esi = this.#parser.parseEsi(this.obj.body as Buffer, this.#url)
    regzipWithoutEsi(this.obj, this.#gzip)
    // From a timer, as a stored page's (cache-fill.ts): the first include reuses the page's
    // backend connection once undici has it back.
    setTimeout(this.#done, 0, this.obj)
  }

  #fail(): void {
    if (this.#over) return
    this.#over = true
    this.#coder?.destroy()
    this.#done(undefined)
  }
}
