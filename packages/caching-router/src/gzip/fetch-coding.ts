import zlib from 'node:zlib'
import { EdgeError } from '@edgestack/common'
import { weakenedEtag } from '../deliver.js'
import type { BerespObj } from '../policy.js'

/**
 * What a fetch does to the body before it is stored (cache_fetch.c vbf_stp_fetch's filters):
 * `gzip` (beresp.do_gzip on a body with no Content-Encoding), `gunzip` (do_gunzip on a gzip
 * body, or a gzip body that ESI must read), `test` (a gzip body stored as it is: varnishd's
 * testgunzip inflates it to make sure it is gzip), or nothing.
 */
export type FetchCoding = 'gzip' | 'gunzip' | 'test' | undefined

export interface GzipParams {
  readonly support: boolean
  readonly level: number
  readonly memLevel: number
  readonly buffer: number
}

/** A gzip body that does not inflate (varnishd: "Invalid Gzip data"): the fetch fails. */
export class InvalidGzipError extends EdgeError {
  constructor(cause: unknown) {
    super('EDGE_ERR_INVALID_GZIP', `Invalid Gzip data: ${(cause as Error).message}`, { cause })
  }
}

/** An inflated body past the storage limit (a decompression bomb): the fetch fails. */
export class GzipTooLargeError extends EdgeError {
  constructor(limit: number) {
    super('EDGE_ERR_GZIP_TOO_LARGE', `gunzip: body larger than the storage (${limit} bytes) when inflated`)
  }
}

/**
 * Decides the coding for `beresp` after vcl_backend_response and changes its fields as
 * varnishd's filters do: gzip and gunzip drop Content-Length, set or drop Content-Encoding
 * and weaken the ETag (RFC2616_Weaken_Etag); gzip and testgunzip add Accept-Encoding to Vary
 * (RFC2616_Vary_AE), as esi_gzip does (the caller's, see esiGzip).
 */
export function fetchCoding(beresp: BerespObj, doGzip: boolean, doGunzip: boolean, esi: boolean, p: GzipParams): FetchCoding {
  const ce = contentEncoding(beresp.headers)
  // http_gzip_support off turns do_gzip and do_gunzip off, and testgunzip; ESI still has to
  // read a gzip page (vbf_stp_fetch pushes gunzip for is_gzip && do_esi whatever the parameter).
  if (!p.support) return ce === 'gzip' && esi ? 'gunzip' : undefined
  const isGzip = ce === 'gzip'
  const isPlain = ce === undefined
  let coding: FetchCoding
  if ((doGunzip && isGzip) || (isGzip && esi)) coding = 'gunzip'
  else if (doGzip && isPlain && !esi) coding = 'gzip'
  else if (isGzip) coding = 'test'
  if (coding === 'gzip' || coding === 'gunzip') beresp.headers = recoded(beresp.headers, coding)
  // testgunzip adds Accept-Encoding to Vary too (the object is gzip), and keeps the ETag.
  else if (coding === 'test') beresp.headers = recoded(beresp.headers, coding)
  return coding
}

export function contentEncoding(headers: readonly string[]): string | undefined {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    if (name.length === 16 && name.toLowerCase() === 'content-encoding') return (headers[i + 1] as string).trim().toLowerCase()
  }
  return undefined
}

function recoded(headers: readonly string[], coding: 'gzip' | 'gunzip' | 'test'): string[] {
  const test = coding === 'test'
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    const lower = name.toLowerCase()
    let value = headers[i + 1] as string
    if (!test && (lower === 'content-encoding' || lower === 'content-length')) continue
    if (!test && lower === 'etag') value = weakenedEtag(value)
    out.push(name, value)
  }
  // vfp_gzip_init: gzip and testgunzip add Accept-Encoding to Vary, gunzip does not (e00028).
  if (coding !== 'gunzip') varyAcceptEncoding(out)
  if (coding === 'gzip') out.push('Content-Encoding', 'gzip')
  return out
}

/** RFC2616_Vary_AE: Accept-Encoding added to the Vary field (or a Vary made), in place. */
export function varyAcceptEncoding(headers: string[]): void {
  for (let i = 0; i < headers.length; i += 2) {
    if ((headers[i] as string).toLowerCase() !== 'vary') continue
    const value = headers[i + 1] as string
    if (!/(^|,)\s*accept-encoding\s*(,|$)/i.test(value)) headers[i + 1] = `${value}, Accept-Encoding`
    return
  }
  headers.push('Vary', 'Accept-Encoding')
}

/**
 * The zlib stream for a coding, bounded: an inflated output past `limit` bytes fails it
 * (GzipTooLargeError) instead of growing, so a small gzip bomb is never inflated beyond the
 * storage; `out` gets what is to be stored (the coded bytes; for `test`, nothing: the gzip
 * bytes are stored as they came and the inflated ones only counted).
 */
export class BodyCoder {
  readonly #stream: zlib.Gzip | zlib.Gunzip
  readonly #test: boolean
  readonly #inflating: boolean
  readonly #checked: (chunk: Buffer) => void
  /** Inflated (or deflated input) bytes so far: the plain length once done. */
  plainBytes = 0

  constructor(
    coding: 'gzip' | 'gunzip' | 'test',
    p: GzipParams,
    limit: number,
    out: (chunk: Buffer) => void,
    /** `test`: each input chunk once zlib took it without an error (stored only then, as varnishd's VFP). */
    checked: (chunk: Buffer) => void,
    done: (err: Error | undefined) => void,
  ) {
    this.#test = coding === 'test'
    this.#stream =
      coding === 'gzip' ? zlib.createGzip({ level: p.level, memLevel: p.memLevel, chunkSize: p.buffer }) : zlib.createGunzip({ chunkSize: p.buffer })
    const inflating = coding !== 'gzip'
    this.#inflating = inflating
    this.#checked = checked
    let failed = false
    const fail = (err: Error) => {
      if (failed) return
      failed = true
      this.#stream.destroy()
      done(err)
    }
    this.#stream.on('data', (c: Buffer) => {
      if (inflating) {
        this.plainBytes += c.length
        if (this.plainBytes > limit) {
          // Only a check: the gzip bytes are what is stored, so past the limit the check
          // stops (its length unknown) rather than inflate a bomb to the end.
          if (!this.#test) return fail(new GzipTooLargeError(limit))
          this.plainBytes = -1
          failed = true
          this.#stream.destroy()
          return done(undefined)
        }
      }
      if (!this.#test) out(c)
    })
    this.#stream.once('error', (err) => fail(inflating ? new InvalidGzipError(err) : err))
    this.#stream.once('end', () => {
      if (!failed) done(undefined)
    })
  }

  /** False when zlib's buffer is full: wait for `onDrain`. */
  write(chunk: Buffer): boolean {
    if (this.#stream.destroyed || !this.#stream.writable) return true
    if (!this.#inflating) this.plainBytes += chunk.length
    if (this.#test) return this.#stream.write(chunk, (err) => err == null && this.#checked(chunk))
    return this.#stream.write(chunk)
  }

  onDrain(fn: () => void): void {
    this.#stream.once('drain', fn)
  }

  end(): void {
    if (!this.#stream.destroyed) this.#stream.end()
  }

  destroy(): void {
    this.#stream.destroy()
  }
}
