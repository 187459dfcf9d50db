import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import type { Http1Response } from '@edgestack/common'
import type { GzipOutput } from '../gzip/gzip-output.js'

/** Where a fragment's body goes: the client's response (maybe through gzip), or the fragment that included this one. */
export type EsiOutput = Http1Response | FragmentResponse | GzipOutput

/**
 * The response of an ESI include's sub-request (varnishd's VED transport, cache_esi_deliver.c):
 * it runs through the router's usual paths (lookup, fill, pass, vcl_deliver, vcl_synth) as a
 * client's request does, and this stands in for the client's response there. Its head is not
 * sent; its body goes into the including page at the include's place. A client that leaves
 * is seen here as 'close', so a fill done for this fragment alone is abandoned as for a client.
 */
export class FragmentResponse extends EventEmitter {
  statusCode = 0
  headersSent = false
  finished = false
  bytesWritten = 0
  bytesSent = 0
  headBytes = 0
  onFinish: (() => void) | undefined = undefined
  /** The fragment was cut short (its fetch failed part way). */
  failed = false
  readonly #out: EsiOutput
  readonly #onOutClose = () => {
    if (!this.finished) this.emit('close')
  }

  constructor(out: EsiOutput) {
    super()
    this.#out = out
    out.once('close', this.#onOutClose)
  }

  /** The client's socket: its 'drain' is when a refused write may go on. */
  get socket(): Socket {
    return this.#out.socket
  }

  send(status: number, _headers: readonly string[], body?: Buffer | string, _reason?: string): void {
    this.#head(status)
    if (body !== undefined && body.length > 0) this.write(body)
    this.#finish()
  }

  writeHead(status: number, _headers: readonly string[], _reason?: string): void {
    this.#head(status)
  }

  write(chunk: Buffer | string): boolean {
    if (this.finished) return false
    this.bytesWritten += chunk.length
    return this.#out.write(chunk)
  }

  end(chunk?: Buffer | string): void {
    if (this.finished) return
    if (chunk !== undefined) this.write(chunk)
    this.#finish()
  }

  /** No interim responses from an include reach the client (nor from varnishd's). */
  writeInterim(_status: number, _headers: readonly string[], _reason?: string): boolean {
    return false
  }

  writeContinue(): void {}

  /** The fragment broke off (a fetch failed part way): the page decides what that means. */
  destroy(): void {
    if (this.finished) return
    this.failed = true
    this.#finish()
  }

  connectionField(): string {
    return ''
  }

  hijack(): never {
    // client-request.ts turns vcl_recv's pipe into a pass for an include, as varnishd does.
    throw new Error('an ESI include cannot be piped')
  }

  /**
   * Whatever the status, the body is included: varnishd 7.1.1 includes a 404 or a 503
   * fragment's body with esi_include_onerror too (esi-differential.test.ts).
   */
  #head(status: number): void {
    this.statusCode = status
    this.headersSent = true
  }

  #finish(): void {
    this.finished = true
    this.#out.off('close', this.#onOutClose)
    this.onFinish?.()
    this.emit('finish')
  }
}

/** A FragmentResponse where the router's paths expect the client's response. */
export function asResponse(res: FragmentResponse): Http1Response {
  // The router's paths use only what both have (send, writeHead, write, end, destroy,
  // writeInterim, the state fields and 'close'/'finish'): a structural stand-in, as
  // Http1Response's private fields keep TypeScript from seeing it as one.
  return res as unknown as Http1Response
}
