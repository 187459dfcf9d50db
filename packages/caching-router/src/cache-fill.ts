import type { Socket } from 'node:net'
import { getHeader, type Http1Response } from '@edgestack/common'
import type { FetchControl, FetchSink } from './backend.js'
import { type BackendFetch, withDate } from './backend-fetch.js'
import { CacheObject } from './cache-object.js'
import { storableHeaders } from './deliver.js'
import { PassEsiBody } from './esi/pass-esi.js'
import { BodyCoder, contentEncoding, fetchCoding } from './gzip/fetch-coding.js'
import type { Params } from './params.js'
import type { BereqObj, BerespObj, Policy, ReqObj } from './policy.js'
import type { RangeSlicer } from './range.js'
import { berespOf, type Responder } from './respond.js'
import { addConditionals, merge304, revalidates } from './revalidation.js'
import { isErrorStatus, standsInForError } from './stale-if-error.js'
import { type CacheStore, varyKey, varyNamesOf } from './store.js'
import { writeStreamHead } from './stream-head.js'
import { makeBrotliCopy } from './gzip/brotli-copy.js'
import { esiGzipFetch, regzipWithoutEsi } from './gzip/esi-gzip.js'
import { computeFreshness } from './ttl.js'
import type { PeerCache } from './workers/peer-cache.js'

export interface FillDeps {
  store: CacheStore
  params: Params
  policy: Policy
  responder: Responder
  via: string
  fetches: BackendFetch
  clock(): number
  /** `--workers N`: the owner of each hash range (workers/peer-cache.ts); undefined with one. */
  peers?: PeerCache | undefined
  /** `--brotli`: a brotli copy is made beside each complete gzip object. */
  brotli?: boolean
}

/** One fill: for `r`, answering `res` (undefined: a background refresh), under `hash`. */
export interface FillJob {
  readonly r: ReqObj
  readonly res: Http1Response | undefined
  readonly socket: Socket | undefined
  readonly hash: string
  /** A kept object to revalidate with a conditional request. */
  readonly stale: CacheObject | undefined
}

/** Vary's names without accept-encoding (undefined when none is left). */
function withoutAcceptEncoding(names: string[] | undefined): string[] | undefined {
  if (names === undefined || !names.includes('accept-encoding')) return names
  const rest = names.filter((n) => n !== 'accept-encoding')
  return rest.length > 0 ? rest : undefined
}

/**
 * A cache fill (miss, hit-for-miss, or a background refresh). With `busy`, concurrent misses
 * wait for this fetch's response head and then stream from the object it fills.
 */
export function startFill(d: FillDeps, job: FillJob, busy: boolean): void {
  const { store } = d
  const { r, res, hash, stale } = job
  const bereq = d.fetches.bereqOf(r, 'GET', true, false, res === undefined)
  // The object carries its fetch's vxid: a hit's X-Varnish is "req.xid obj.xid" (varnishd).
  const obj = new CacheObject(bereq.xid, hash)
  if (busy) store.beginBusy(obj)
  if (stale !== undefined) addConditionals(bereq.headers, stale)
  // Another worker owns the hash: its copy, or its busy marker while this one fetches.
  if (busy && res !== undefined && stale === undefined && d.peers?.isRemote(hash)) {
    d.peers.fill(hash, r.headers, r.url, obj, () => fetchInto(d, job, obj, bereq), () => d.responder.deliver(r, res, obj, true))
    return
  }
  fetchInto(d, job, obj, bereq)
}

/** vcl_backend_fetch, then the fetch filling `obj` (again after a `retry`). */
function fetchInto(d: FillDeps, job: FillJob, obj: CacheObject, bereq: BereqObj): void {
  const { r, res } = job
  if (d.policy.backendFetch(bereq) === 'abandon') {
    d.fetches.abandoned(bereq)
    d.store.unbusy(obj, false, d.clock())
    if (res) d.responder.synth(r, res, 503, 'Service Unavailable')
    return
  }
  const fill = new CacheFill(d, job, obj, bereq)
  const control = d.fetches.start(bereq, undefined, fill)
  if (!control) {
    fill.giveUp()
    if (res) d.responder.backendError(r, res, bereq)
    return
  }
  fill.control = control
  // A client that leaves does not stop a fill others may be waiting for, only a direct one.
  if (res) res.once('close', () => fill.direct && control.abort())
}

/**
 * The backend's response to a fill, as undici's cache-handler takes it: vcl_backend_response
 * decides; a cacheable response fills `obj` (waiters stream from it), an uncacheable one
 * leaves a hit-for-miss marker and goes to this client directly, a 304 renews the kept object.
 */
class CacheFill implements FetchSink {
  /** Not stored: the response goes to this client only. */
  direct = false
  /** A 304 renewed the kept object: its body is the answer, the backend sends none. */
  revalidated = false
  /** `beresp.do_stream = false`: the object is stored and delivered once its body is complete. */
  #whole = false
  /** `beresp.do_esi`: the body is parsed for ESI once complete (and delivered only then). */
  #esi = false
  /** gzip, gunzip or testgunzip on the way into the store (src/gzip/). */
  #coder: BodyCoder | undefined
  /** An uncacheable response with do_esi, for this client alone. */
  #passEsi: PassEsiBody | undefined
  control: FetchControl | undefined
  #slicer: RangeSlicer | undefined
  readonly #d: FillDeps
  readonly #job: FillJob
  readonly #r: ReqObj
  #res: Http1Response | undefined
  readonly #socket: Socket | undefined
  readonly #hash: string
  readonly #stale: CacheObject | undefined
  readonly #obj: CacheObject
  readonly #bereq: BereqObj

  constructor(d: FillDeps, job: FillJob, obj: CacheObject, bereq: BereqObj) {
    this.#d = d
    this.#job = job
    this.#r = job.r
    this.#res = job.res
    this.#socket = job.socket
    this.#hash = job.hash
    this.#stale = job.stale
    this.#obj = obj
    this.#bereq = bereq
  }

  giveUp(): void {
    this.#d.store.unbusy(this.#obj, false, this.#d.clock())
  }

  head(status: number, reason: string, headers: string[]): void {
    const { store, policy, params } = this.#d
    const r = this.#r
    const stale = this.#stale
    const now = this.#d.clock()
    withDate(headers)
    if (isErrorStatus(status) && standsInForError(stale, now)) {
      // RFC 5861 §4: a 500/502/503/504 is an error as much as a connection that failed; the
      // stale copy (grace or stale-if-error) answers, and stays stored (see error() below).
      this.control?.abort()
      this.giveUp()
      this.direct = true
      if (this.#res) this.#d.responder.deliver(r, this.#res, stale, true)
      this.#res = undefined
      return
    }
    if (revalidates(status, stale)) {
      this.revalidated = true
      headers = merge304(stale.headers, headers)
      status = stale.status
      reason = stale.reason
    }
    const fresh = computeFreshness(status, headers, now, {
      defaultTtl: params.get('default_ttl'),
      defaultGrace: params.get('default_grace'),
      defaultKeep: params.get('default_keep'),
      targets: params.targets,
    })
    const beresp = berespOf(status, reason, headers, fresh)
    if (fresh.targeted) beresp.targeted = true
    beresp.was304 = this.revalidated
    // RFC 9111 §3.3/§3.4: partial content (a 206) is passed on, never stored as the object.
    // A 200 is complete whatever fields it carries: a Content-Range on it has no meaning
    // (RFC 9110 §14.4 defines it for 206 and 416 only), so it is stored as the whole body.
    const partial = status === 206
    const action = policy.backendResponse(this.#bereq, beresp)
    if (action === 'abandon') {
      this.control?.abort()
      this.giveUp()
      if (this.#res) this.#d.responder.synth(r, this.#res, 503, 'Backend fetch failed')
      return
    }
    if (action === 'retry') {
      this.control?.abort()
      const bereq = this.#bereq
      // cache_fetch.c vbf_stp_retry: past max_retries the fetch fails ("Too many retries"),
      // which is vcl_backend_error's 503.
      if ((bereq.retries ?? 0) >= params.get('max_retries')) {
        this.giveUp()
        if (this.#res) this.#d.responder.backendError(r, this.#res, bereq)
        return
      }
      bereq.retries = (bereq.retries ?? 0) + 1
      fetchInto(this.#d, this.#job, this.#obj, bereq)
      return
    }
    if (beresp.uncacheable || partial) {
      if (beresp.uncacheable && !partial && !store.renewMarker(this.#hash, beresp.ttl, now)) {
        store.insert(hitForMiss(r.xid, this.#hash, beresp, now), now)
      }
      this.giveUp()
      this.direct = true
      const res = this.#res
      if (!res) {
        this.control?.abort()
        return
      }
      if (beresp.doEsi && !partial && !this.revalidated && beresp.status !== 204 && beresp.status !== 304) {
        // Not stored, still a page: collected, parsed and assembled as a pass's (esi/pass-esi.ts).
        this.#passEsi = new PassEsiBody(this.#bereq, beresp, params.gzip, store.maxBytes, this.#d.fetches, (obj) => {
          if (obj !== undefined) this.#d.responder.deliver(r, res, obj, false)
          else if (res.headersSent) res.destroy()
          else this.#d.responder.synth(r, res, 503, 'Backend fetch failed')
        })
        return
      }
      const written = writeStreamHead(this.#d, r, res, this.#socket, beresp.status, beresp.reason, beresp.headers, true)
      if (written === false) {
        // vcl_deliver chose synth (or the Range was a 416): that answer is written, the backend's body is dropped.
        this.control?.abort()
        this.#res = undefined
        return
      }
      if (written !== true) this.#slicer = written
      if (this.revalidated) res.end(stale?.body && this.#slicer ? this.#slicer.take(stale.body) : stale?.body)
      return
    }
    const obj = this.#obj
    const ce = contentEncoding(beresp.headers)
    const gzipSupport = params.gzip.support
    const coding = this.revalidated ? undefined : fetchCoding(beresp, beresp.doGzip === true, beresp.doGunzip === true, beresp.doEsi === true, params.gzip)
    obj.esiGzip = this.revalidated ? (stale?.esiGzip ?? false) : beresp.doEsi === true && esiGzipFetch(beresp, ce, params.gzip)
    if (coding !== undefined) this.#startCoder(coding)
    obj.gzip = this.revalidated ? (stale?.gzip ?? false) : coding === 'gzip' || coding === 'test'
    if (this.revalidated) obj.plainLength = stale?.plainLength
    obj.setHead(beresp.status, beresp.reason, storableHeaders(beresp.headers))
    obj.contentLength = getHeader(beresp.headers, 'content-length')
    obj.ttl = beresp.ttl
    obj.grace = beresp.grace
    // A stale-if-error copy must still be there when the fetch fails: keep it that long.
    obj.keep = Math.max(beresp.keep, fresh.staleIfError)
    obj.staleIfError = fresh.staleIfError
    obj.tOrigin = now - fresh.age * 1000
    // With http_gzip_support varnishd's lookup does not tell clients apart by Accept-Encoding
    // (it gunzips for those that take no gzip): one object for all, as measured with 7.1.1
    // (a gzip client's fill is a hit for a plain client and for a `br` one, Vary or not).
    obj.varyNames = gzipSupport ? withoutAcceptEncoding(varyNamesOf(beresp.headers)) : varyNamesOf(beresp.headers)
    obj.varyKey = obj.varyNames ? varyKey(obj.varyNames, r.headers) : ''
    if (this.revalidated && stale) {
      store.remove(stale)
      obj.append(stale.body as Buffer)
      obj.complete()
      // vbf_stp_condfetch copies the kept object's ESI data with its body.
      if (beresp.doEsi) obj.esi = stale.esi
      this.#brotliCopy()
    } else if (beresp.doStream === false || beresp.doEsi) {
      // ESI is parsed from the whole body once. varnishd's VEP runs as the body arrives, but its
      // delivery pushes the esi VDP only once VEP left OA_ESIDATA at the fetch's end, so its
      // clients wait for the whole page too (measured with 7.1.1; the fragments still stream).
      this.#esi = beresp.doEsi === true
      // Waiters stay parked on the busy object and this client waits until end() (varnishd
      // delivers a non-streamed object once its fetch finished, BOS_FINISHED).
      this.#whole = true
      return
    }
    this.#publish(now)
  }

  #startCoder(coding: 'gzip' | 'gunzip' | 'test'): void {
    const obj = this.#obj
    const store = this.#d.store
    this.#coder = new BodyCoder(
      coding,
      this.#d.params.gzip,
      store.maxBytes,
      (c) => {
        obj.append(c)
        store.grew(obj, c.length)
      },
      (c) => {
        if (obj.state === 'streaming') {
          obj.append(c)
          store.grew(obj, c.length)
        }
      },
      (err) => {
        if (err !== undefined) {
          // cache_fetch.c: a filter error fails the fetch; the object is not stored.
          this.control?.abort()
          this.error(err)
          return
        }
        const plain = this.#coder?.plainBytes ?? -1
        if (plain >= 0) obj.plainLength = plain
        this.#coder = undefined
        this.#stored()
      },
    )
  }

  #publish(now: number): void {
    this.#d.store.unbusy(this.#obj, true, now)
    if (this.#res) this.#d.responder.deliver(this.#r, this.#res, this.#obj, false)
  }

  /** RFC 9110 §15.2: relayed to the client whose miss this is, never stored with the object. */
  interim(status: number, reason: string, headers: string[]): void {
    this.#res?.writeInterim(status, headers, reason)
  }

  data(c: Buffer): boolean {
    if (this.revalidated) return true
    const passEsi = this.#passEsi
    if (passEsi !== undefined) {
      if (passEsi.data(c)) return true
      passEsi.onDrain(() => this.control?.resume())
      return false
    }
    if (this.direct) {
      const res = this.#res
      if (!res) return false
      if (this.#slicer !== undefined) {
        const part = this.#slicer.partOf(c, res)
        if (part === undefined) return true
        c = part
      }
      if (res.write(c)) return true
      // The client's socket is full: the backend waits until it drained.
      this.#socket?.once('drain', () => this.control?.resume())
      return false
    }
    const coder = this.#coder
    if (coder !== undefined) {
      if (coder.write(c)) return true
      coder.onDrain(() => this.control?.resume())
      return false
    }
    this.#obj.append(c)
    this.#d.store.grew(this.#obj, c.length)
    return true
  }

  end(): void {
    if (this.#passEsi !== undefined) this.#passEsi.end()
    else if (this.direct) {
      if (!this.revalidated) this.#res?.end()
    } else if (!this.revalidated) {
      // A coded body is complete once zlib has given its last bytes (#startCoder's done).
      if (this.#coder !== undefined) this.#coder.end()
      else this.#stored()
    }
  }

  /** `--brotli`: made once the object is complete (and stored), off the event loop. */
  #brotliCopy(): void {
    if (this.#d.brotli) makeBrotliCopy(this.#obj, this.#d.store)
  }

  /** The whole body is in the object: ESI is parsed and a held (do_stream = false) object published. */
  #stored(): void {
    this.#obj.complete()
    if (this.#esi && this.#obj.body !== undefined) {
      this.#obj.esi = this.#d.fetches.parseEsi(this.#obj.body, this.#bereq.url)
      regzipWithoutEsi(this.#obj, this.#d.params.gzip, this.#d.store)
    }
    this.#brotliCopy()
    if (this.#whole) {
      // Larger than the store: nothing kept to deliver (varnishd fails such a fetch too).
      if (this.#obj.body === undefined || this.#obj.received > this.#obj.body.length) this.#failWhole()
      // An ESI page's includes go out from a timer (a miss only), once undici has put the
      // page's backend connection back in its pool (after setImmediate it has not yet): the
      // first include reuses it, as varnishd's does; a backend that serves one connection at a
      // time (varnishtest's servers) needs that.
      else if (this.#esi) setTimeout(() => this.#publish(this.#d.clock()), 0)
      else this.#publish(this.#d.clock())
    }
  }

  /**
   * A non-streamed object's fetch failed before it was complete: nobody saw it, so the
   * client gets vcl_synth's 503 (cache_req_fsm.c: a failed objcore on a miss).
   */
  #failWhole(): void {
    this.#whole = false
    this.#obj.fail()
    this.giveUp()
    if (this.#res) this.#d.responder.synth(this.#r, this.#res, 503, 'Backend fetch failed')
  }

  error(err: Error): void {
    this.#coder?.destroy()
    this.#coder = undefined
    // An origin that closes without a response lands here as undici's socket error: the
    // same stale-copy rule as a 5xx answer (head() above).
    this.#d.fetches.failed(err, this.#r.xid, this.#bereq.backend)
    if (this.#passEsi !== undefined) {
      this.#passEsi.error()
      return
    }
    if (this.direct) {
      // The client has this response's head already: all we can do is cut it short.
      this.#res?.destroy()
      return
    }
    const obj = this.#obj
    if (obj.state === 'complete' || obj.state === 'failed') return
    if (this.#whole) {
      this.#failWhole()
      return
    }
    if (obj.state === 'busy') {
      this.giveUp()
      const res = this.#res
      if (!res) return
      // Grace and RFC 5861 stale-if-error: a stale copy beats an error page.
      if (standsInForError(this.#stale, this.#d.clock())) this.#d.responder.deliver(this.#r, res, this.#stale, true)
      else this.#d.responder.backendError(this.#r, res, this.#bereq)
      return
    }
    obj.fail()
    this.#d.store.remove(obj)
  }
}

function hitForMiss(xid: number, hash: string, beresp: BerespObj, now: number): CacheObject {
  const marker = new CacheObject(xid, hash)
  marker.setHead(beresp.status, beresp.reason, [])
  marker.hitForMiss = true
  marker.ttl = beresp.ttl
  marker.tOrigin = now
  marker.complete()
  return marker
}
