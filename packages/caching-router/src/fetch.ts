import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import { getHeader, Http1ParseError, httpDateNow, type Http1Response, hopByHopNames, type Logger } from '@edgestack/common'
import type { Backend, FetchControl } from './backend.js'
import { CacheObject } from './cache-object.js'
import type { Counters } from './counters.js'
import { storableHeaders } from './deliver.js'
import type { Params } from './params.js'
import { type BereqObj, type BerespObj, isBuiltinStep, type Policy, type ReqObj, type RespObj } from './policy.js'
import { type CacheStore, varyKey, varyNamesOf } from './store.js'
import type { RangeSlicer } from './range.js'
import { berespOf, objView, type Responder, rangeSlicer } from './respond.js'
import { computeFreshness } from './ttl.js'

export interface FetcherDeps {
  store: CacheStore
  counters: Counters
  params: Params
  policy: Policy
  /** The backend a name (req.backend_hint, bereq.backend) stands for, if any. */
  backends(name: string): Backend | undefined
  logger: Logger
  via: string
  nextXid(): number
}

// varnishd's HTTPH_R_FETCH: a cache fill asks for the whole object, whatever this client asked.
const NOT_ON_FILL = new Set(['range', 'if-range', 'if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'expect'])
// varnishd answers Expect itself.
const NOT_ON_PASS = new Set(['expect'])
// RFC 9111 §3.2: a 304 never updates these of the stored response.
const NOT_FROM_304 = new Set(['content-length', 'content-encoding', 'transfer-encoding', 'content-range'])
/** How many times one request re-checks a busy object before fetching on its own. */
const MAX_BUSY_ROUNDS = 50

/**
 * The request and fetch state machines after vcl_recv: lookup, hit/miss/grace, the cache fill
 * (coalesced, streamed to every waiter), pass, revalidation with a kept object, background
 * refresh in grace, and the synthetic responses.
 */
export class Fetcher {
  readonly #d: FetcherDeps
  readonly #r: Responder

  constructor(deps: FetcherDeps, responder: Responder) {
    this.#d = deps
    this.#r = responder
  }

  /**
   * vcl_hash, the lookup and vcl_hit/vcl_miss. Synchronous unless the object is busy: a hit
   * costs no promise. `round` counts the times this request waited on a busy object.
   */
  lookup(r: ReqObj, res: Http1Response, socket: Socket, log: (h: string) => void, round = 0): void {
    const { store, counters, policy } = this.#d
    const hash = policy.hash(r)
    const now = Date.now()
    const result = store.lookup(
      hash,
      { headers: r.headers, url: r.url, ignoreBusy: r.hashIgnoreBusy || round >= MAX_BUSY_ROUNDS, alwaysMiss: r.hashAlwaysMiss },
      now,
    )
    switch (result.kind) {
      case 'busy':
        counters.busy_sleep++
        result.wait.then(() => {
          counters.busy_wakeup++
          try {
            this.lookup(r, res, socket, log, round + 1)
          } catch (err) {
            this.#d.logger.error(`lookup failed: ${(err as Error).stack}`, { xid: r.xid })
            res.destroy()
          }
        }, noop)
        return
      case 'hit': {
        counters.cache_hit++
        // builtin.vcl's vcl_hit only delivers: no obj view to build for it, no VCL to run.
        const action = isBuiltinStep(policy, r, 'hit') ? 'deliver' : policy.hit(r, objView(result.obj, now))
        if (action === 'deliver') {
          this.#r.deliver(r, res, result.obj, true)
          log('hit')
          return
        }
        if (action !== 'miss') {
          this.#notFetched(action, r, res, socket, log)
          return
        }
        break
      }
      case 'grace':
        counters.cache_hit++
        counters.cache_hit_grace++
        if (result.refresh) {
          counters.bgfetch++
          this.fill(r, undefined, undefined, hash, result.obj, true)
        }
        this.#r.deliver(r, res, result.obj, true)
        log('hit')
        return
      case 'hitmiss':
        // Hit-for-miss: fetch on our own, without waiting for anyone, and store if it changed.
        counters.cache_hitmiss++
        log('miss')
        this.fill(r, res, socket, hash, undefined, false)
        return
    }
    counters.cache_miss++
    const stale = result.kind === 'miss' ? result.stale : undefined
    const action = isBuiltinStep(policy, r, 'miss') ? 'fetch' : policy.miss(r)
    if (action !== 'fetch') {
      this.#notFetched(action, r, res, socket, log)
      return
    }
    log('miss')
    this.fill(r, res, socket, hash, stale, true)
  }

  /** vcl_hit / vcl_miss chose synth or pass. */
  #notFetched(action: 'synth' | 'pass' | 'restart', r: ReqObj, res: Http1Response, socket: Socket, log: (h: string) => void): void {
    if (action === 'restart') this.#r.restart(r, res)
    else if (action === 'synth') this.#r.synth(r, res, r.synthStatus ?? 503, r.synthReason)
    else this.#passFromLookup(r, res, socket, log)
  }

  #passFromLookup(r: ReqObj, res: Http1Response, socket: Socket, log: (h: string) => void): void {
    this.#d.counters.s_pass++
    log('pass')
    this.passFetch(r, this.bereqOf(r, r.method, false, true), undefined, res, socket, noop, noop)
  }

  /** bereq as varnishd builds it from req: hop-by-hop fields gone, X-Varnish added. */
  bereqOf(r: ReqObj, method: string, fill: boolean, uncacheable: boolean, bgfetch = false): BereqObj {
    const headers = forwardable(r.headers, fill ? NOT_ON_FILL : NOT_ON_PASS)
    const xid = this.#d.nextXid()
    headers.push('X-Varnish', String(xid))
    return {
      method,
      url: r.url,
      proto: 'HTTP/1.1',
      headers,
      backend: r.backendHint,
      uncacheable,
      xid,
      isBgfetch: bgfetch,
      bodyUnset: false,
      policyState: r.policyState,
    }
  }

  #start(bereq: BereqObj, body: Readable | undefined, sink: Parameters<Backend['fetch']>[1]): FetchControl | undefined {
    const { backends, params, counters } = this.#d
    const backend = backends(bereq.backend)
    if (!backend) return undefined
    counters.s_fetch++
    counters.backend_req++
    return backend.fetch(
      {
        method: bereq.method,
        url: bereq.url,
        headers: bereq.headers,
        body: bereq.bodyUnset ? undefined : body,
        firstByteTimeoutMs: (bereq.firstByteTimeout ?? params.get('first_byte_timeout')) * 1000,
        betweenBytesTimeoutMs: (bereq.betweenBytesTimeout ?? params.get('between_bytes_timeout')) * 1000,
      },
      sink,
    )
  }

  #failed(err: Error): void {
    const { counters, logger } = this.#d
    counters.fetch_failed++
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ECONNRESET') counters.backend_fail++
    logger.warn(`backend fetch failed: ${err.message}`)
  }

  /** A pass: the response streams to the client with backpressure and is not stored. */
  passFetch(
    r: ReqObj,
    bereq: BereqObj,
    body: Readable | undefined,
    res: Http1Response,
    socket: Socket,
    clientFailed: (err: Error) => void,
    done: (status: number, headers: string[]) => void,
  ): void {
    const { policy } = this.#d
    if (policy.backendFetch(bereq) === 'abandon') {
      this.#r.synth(r, res, 503, 'Service Unavailable')
      return
    }
    let status = 0
    let headers: string[] = []
    // vcl_deliver answered with synth instead (or the Range was a 416): the body is not wanted.
    let replaced = false
    let slicer: RangeSlicer | undefined
    const control = this.#start(bereq, body, {
      head: (s, reason, h) => {
        const beresp = berespOf(s, reason, withDate(h), bereq.backend)
        policy.backendResponse(bereq, beresp)
        status = beresp.status
        headers = beresp.headers
        const written = this.#writeHead(r, res, socket, beresp.status, beresp.reason, beresp.headers, false)
        if (written === false) {
          replaced = true
          control?.abort()
        } else if (written !== true) slicer = written
      },
      data: (c) => {
        if (replaced) return true
        if (slicer !== undefined) {
          const part = slicer.partOf(c, res)
          if (part === undefined) return true
          c = part
        }
        if (res.write(c)) return true
        // The client's socket is full: the backend waits until it drained.
        socket.once('drain', () => control?.resume())
        return false
      },
      end: () => {
        if (replaced) return
        res.end()
        done(status, headers)
      },
      error: (err) => {
        // The client's body broke (a bad chunk size, cut short): the connection has answered
        // 400 (or gone) already, and the backend did nothing wrong.
        const clientErr = body?.errored
        if (clientErr instanceof Error || err instanceof Http1ParseError) {
          clientFailed(clientErr instanceof Error ? clientErr : err)
          return
        }
        this.#failed(err)
        if (res.headersSent) res.destroy()
        else this.#r.backendError(r, res, bereq)
      },
    })
    if (!control) {
      this.#r.backendError(r, res, bereq)
      return
    }
    this.#follow(res, control)
  }

  /** An abort if the client leaves (backpressure: `data` waits for 'drain' when a write is refused). */
  #follow(res: Http1Response, control: FetchControl): void {
    res.once('close', control.abort)
  }

  /**
   * The head of a response that is not stored (pass, hit-for-miss), through vcl_deliver and
   * varnishd's range filter. False when something else was written instead (vcl_deliver's
   * synth, a 416); a RangeSlicer when only part of the body goes out (206).
   * `acceptRanges`: not a pass (varnishd's cnt_deliver adds it to a 200 unless OC_F_PRIVATE).
   */
  #writeHead(
    r: ReqObj,
    res: Http1Response,
    socket: Socket | undefined,
    status: number,
    reason: string,
    headers: string[],
    acceptRanges: boolean,
  ): boolean | RangeSlicer {
    const out: string[] = []
    // varnishd's Age for a response it did not store is the backend's (t_origin from it).
    let age = '0'
    const forceRanges = acceptRanges && status === 200
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string
      // Lengths first: most names are none of these, and are never lower-cased.
      if ((name.length === 3 || name.length === 9) && (name.toLowerCase() === 'age' || name.toLowerCase() === 'x-varnish')) {
        if (name.length === 3) age = ageOf(headers[i + 1] as string, age)
        continue
      }
      // The backend's own Accept-Ranges gives way to the one forced below (as withAcceptRanges).
      if (forceRanges && name.length === 13 && name.toLowerCase() === 'accept-ranges') continue
      out.push(name, headers[i + 1] as string)
    }
    out.push('X-Varnish', String(r.xid), 'Age', age, 'Via', this.#d.via)
    if (forceRanges) out.push('Accept-Ranges', 'bytes')
    const resp: RespObj = { status, reason, proto: r.proto, headers: out }
    const next = isBuiltinStep(this.#d.policy, r, 'deliver') ? 'deliver' : this.#d.policy.deliver(r, resp)
    if (next !== 'deliver') {
      if (next === 'restart') this.#r.restart(r, res)
      else this.#r.synth(r, res, r.synthStatus ?? 503, r.synthReason)
      return false
    }
    const slicer = rangeSlicer(r, res, resp)
    if (slicer === null) return false
    // The head waits for the body bytes that usually arrived in the same read from the backend:
    // one write (one system call) for both instead of two, until the end of this tick.
    if (socket !== undefined) {
      socket.cork()
      process.nextTick(uncork, socket)
    }
    res.writeHead(resp.status, resp.headers, resp.reason)
    return slicer ?? true
  }

  /**
   * A cache fill (miss, hit-for-miss, or a background refresh when `res` is undefined). With
   * `busy`, concurrent misses wait for this fetch's response head and then stream from the
   * object it fills. `stale` is a kept object to revalidate with a conditional request.
   */
  fill(r: ReqObj, res: Http1Response | undefined, socket: Socket | undefined, hash: string, stale: CacheObject | undefined, busy: boolean): void {
    const { store, policy, params } = this.#d
    const obj = new CacheObject(r.xid, hash)
    if (busy) store.beginBusy(obj)
    const bereq = this.bereqOf(r, 'GET', true, false, res === undefined)
    if (stale?.etag !== undefined) bereq.headers.push('If-None-Match', stale.etag)
    if (stale?.lastModified !== undefined) bereq.headers.push('If-Modified-Since', stale.lastModified)
    const giveUp = () => store.unbusy(obj, false, Date.now())
    if (policy.backendFetch(bereq) === 'abandon') {
      giveUp()
      if (res) this.#r.synth(r, res, 503, 'Service Unavailable')
      return
    }
    let direct = false
    let revalidated = false
    let slicer: RangeSlicer | undefined
    const defaults = {
      defaultTtl: params.get('default_ttl'),
      defaultGrace: params.get('default_grace'),
      defaultKeep: params.get('default_keep'),
    }
    const control = this.#start(bereq, undefined, {
      head: (status, reason, headers) => {
        const now = Date.now()
        withDate(headers)
        if (status === 304 && stale?.body !== undefined) {
          // RFC 9111 §4.3.4: the kept object, with the 304's fields replacing its own.
          revalidated = true
          headers = merge304(stale.headers, headers)
          status = stale.status
          reason = stale.reason
        }
        const fresh = computeFreshness(status, headers, now, defaults)
        const beresp = berespOf(status, reason, headers, bereq.backend, fresh)
        beresp.was304 = revalidated
        // RFC 9111 §3.3/§3.4: partial content is passed on, never stored as the object.
        const partial = status === 206 || getHeader(headers, 'content-range') !== undefined
        if (policy.backendResponse(bereq, beresp) === 'abandon') {
          control?.abort()
          giveUp()
          if (res) this.#r.synth(r, res, 503, 'Backend fetch failed')
          return
        }
        if (beresp.uncacheable || partial) {
          if (beresp.uncacheable && !partial && !store.renewMarker(hash, beresp.ttl, now)) {
            store.insert(hitForMiss(r.xid, hash, beresp, now), now)
          }
          giveUp()
          direct = true
          if (!res) {
            control?.abort()
            return
          }
          const written = this.#writeHead(r, res, socket, beresp.status, beresp.reason, beresp.headers, true)
          if (written === false) {
            // vcl_deliver chose synth (or the Range was a 416): that answer is written, the backend's body is dropped.
            control?.abort()
            res = undefined
            return
          }
          if (written !== true) slicer = written
          if (revalidated) res.end(stale?.body && slicer ? slicer.take(stale.body) : stale?.body)
          return
        }
        obj.setHead(beresp.status, beresp.reason, storableHeaders(beresp.headers))
        obj.contentLength = getHeader(beresp.headers, 'content-length')
        obj.ttl = beresp.ttl
        obj.grace = beresp.grace
        // A stale-if-error copy must still be there when the fetch fails: keep it that long.
        obj.keep = Math.max(beresp.keep, fresh.staleIfError)
        obj.staleIfError = fresh.staleIfError
        obj.tOrigin = now - fresh.age * 1000
        obj.varyNames = varyNamesOf(beresp.headers)
        obj.varyKey = obj.varyNames ? varyKey(obj.varyNames, r.headers) : ''
        if (revalidated && stale) {
          store.remove(stale)
          obj.append(stale.body as Buffer)
          obj.complete()
        }
        store.unbusy(obj, true, now)
        if (res) this.#r.deliver(r, res, obj, false)
      },
      data: (c) => {
        if (revalidated) return true
        if (direct) {
          if (!res) return false
          if (slicer !== undefined) {
            const part = slicer.partOf(c, res)
            if (part === undefined) return true
            c = part
          }
          if (res.write(c)) return true
          // The client's socket is full: the backend waits until it drained.
          socket?.once('drain', () => control?.resume())
          return false
        }
        obj.append(c)
        store.grew(obj, c.length)
        return true
      },
      end: () => {
        if (direct) {
          if (!revalidated) res?.end()
        } else if (!revalidated) obj.complete()
      },
      error: (err) => {
        this.#failed(err)
        if (direct) {
          // The client has this response's head already: all we can do is cut it short.
          res?.destroy()
          return
        }
        if (obj.state === 'complete') return
        if (obj.state === 'busy') {
          giveUp()
          if (!res) return
          const now = Date.now()
          // Grace and RFC 5861 stale-if-error: a stale copy beats an error page.
          if (stale?.state === 'complete' && stale.ttlLeft(now) + Math.max(stale.grace, stale.staleIfError) > 0) {
            return this.#r.deliver(r, res, stale, true)
          }
          return this.#r.backendError(r, res, bereq)
        }
        obj.fail()
        store.remove(obj)
      },
    })
    if (!control) {
      giveUp()
      if (res) this.#r.backendError(r, res, bereq)
      return
    }
    if (res) {
      // A client that leaves does not stop a fill others may be waiting for, only a direct one.
      res.once('close', () => {
        if (direct) control.abort()
      })
    }
  }
}

const noop = () => {}

/** A backend's Age as delivered: its digits, or `fallback` when it is not a number (RFC 9111 §5.1). */
function ageOf(value: string, fallback: string): string {
  const v = value.trim()
  if (v.length === 0 || v.length > 10) return fallback
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return fallback
  }
  return String(Number(v))
}

const uncork = (socket: Socket) => socket.uncork()

/**
 * The request's fields a backend request carries: neither hop-by-hop (RFC 9110 §7.6.1, with
 * what Connection names) nor in `drop`. One pass, one copy.
 */
function forwardable(headers: readonly string[], drop: Set<string>): string[] {
  let connection: string[] | undefined
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      connection ??= []
      connection.push(headers[i + 1] as string)
    }
  }
  const hop = hopByHopNames(connection)
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    const lower = name.toLowerCase()
    if (!hop.has(lower) && !drop.has(lower)) out.push(name, headers[i + 1] as string)
  }
  return out
}

/**
 * RFC 9110 §6.6.1: a recipient with a clock that forwards or stores a response without Date
 * adds one for when it was received (varnishd does so for every fetch).
 */
function withDate(headers: string[]): string[] {
  if (getHeader(headers, 'date') === undefined) headers.push('Date', httpDateNow())
  return headers
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

function merge304(stored: readonly string[], fresh: readonly string[]): string[] {
  const replaced = new Set<string>()
  for (let i = 0; i < fresh.length; i += 2) {
    const n = (fresh[i] as string).toLowerCase()
    if (!NOT_FROM_304.has(n)) replaced.add(n)
  }
  const out: string[] = []
  for (let i = 0; i < stored.length; i += 2) {
    if (!replaced.has((stored[i] as string).toLowerCase())) out.push(stored[i] as string, stored[i + 1] as string)
  }
  for (let i = 0; i < fresh.length; i += 2) {
    if (replaced.has((fresh[i] as string).toLowerCase())) out.push(fresh[i] as string, fresh[i + 1] as string)
  }
  return out
}
