import { weakenedEtag } from '../deliver.js'
import type { ReqObj } from '../policy.js'
import { type EsiInclude, type EsiProgram, isInclude } from './esi-program.js'
import { type EsiOutput, FragmentResponse } from './fragment-response.js'

/** What the page assembly needs from the router. */
export interface EsiIncluder {
  /** Runs `inc` as a sub-request of `parent` (through vcl_recv, the lookup, ...), into `out`. */
  include(parent: ReqObj, inc: EsiInclude, out: FragmentResponse): void
  /** max_esi_depth, as it is now. */
  maxDepth(): number
  /** feature esi_include_onerror: a failed include ends the page unless onerror="continue". */
  onErrorFeature(): boolean
}

/**
 * varnishd's ESI delivery (cache_esi_deliver.c ved_vdp): the stored body's verbatim parts
 * written as they are and each include's sub-request run in its place, one after the other,
 * its body streamed into the page as it arrives (the page waits for nothing else). A write
 * the client's socket refuses waits for its 'drain'. Includes past max_esi_depth are left
 * out (ved_include returns at once). `out`'s head has been written; this writes the body
 * and ends it, or cuts the page off when an include fails and may not be skipped.
 */
export function deliverEsiBody(d: EsiIncluder, r: ReqObj, out: EsiOutput, program: EsiProgram, body: Buffer): void {
  new EsiWalk(d, r, out, program, body).step()
}

class EsiWalk {
  readonly #d: EsiIncluder
  readonly #r: ReqObj
  readonly #out: EsiOutput
  readonly #program: EsiProgram
  readonly #body: Buffer
  #i = 0
  #closed = false

  constructor(d: EsiIncluder, r: ReqObj, out: EsiOutput, program: EsiProgram, body: Buffer) {
    this.#d = d
    this.#r = r
    this.#out = out
    this.#program = program
    this.#body = body
    out.once('close', () => {
      this.#closed = true
    })
  }

  /**
   * Writes the page from where it stopped. The socket is corked meanwhile, so the verbatim
   * parts and the fragments that are hits (written at once) leave in one write, not a write
   * per part.
   */
  readonly step = (): void => {
    const socket = this.#out.socket
    socket.cork()
    try {
      this.#walk()
    } finally {
      socket.uncork()
    }
  }

  #walk(): void {
    const parts = this.#program.parts
    const out = this.#out
    while (this.#i < parts.length) {
      if (this.#closed || out.finished) return
      const part = parts[this.#i++] as (typeof parts)[number]
      if (isInclude(part)) {
        if ((this.#r.esiLevel ?? 0) >= this.#d.maxDepth()) continue
        const checked = this.#d.onErrorFeature()
        const fragment = new FragmentResponse(out)
        this.#d.include(this.#r, part, fragment)
        if (!fragment.finished) {
          fragment.once('finish', () => this.#afterInclude(fragment, part, checked))
          return
        }
        if (!this.#afterInclude(fragment, part, checked, true)) return
      } else if (!out.write(this.#body.subarray(part.start, part.end))) {
        out.socket.once('drain', this.step)
        return
      }
    }
    if (!this.#closed) out.end()
  }

  /** False when the page stops here (an include failed and may not be skipped). */
  #afterInclude(fragment: FragmentResponse, inc: EsiInclude, checked: boolean, sync = false): boolean {
    if (fragment.failed && checked && !inc.onErrorContinue) {
      // ved_close(req, boc, 1): the top request's delivery fails; the client sees the page cut off.
      this.#out.destroy()
      return false
    }
    // An include that went to a backend: the page goes on from a timer, once undici has the
    // fragment's connection back in its pool, so the next include can reuse it as varnishd's
    // does (hits finish at once and go on without waiting).
    if (!sync) setTimeout(this.step, 0)
    return true
  }
}

/** The head of an ESI-processed page: no length is known, and the ETag can only be weak (RFC2616_Weaken_Etag). */
export function esiHead(headers: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    let value = headers[i + 1] as string
    if (name.length === 14 && name.toLowerCase() === 'content-length') continue
    if (name.length === 4 && name.toLowerCase() === 'etag') value = weakenedEtag(value)
    out.push(name, value)
  }
  return out
}
