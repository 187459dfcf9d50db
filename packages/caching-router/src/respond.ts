import { STATUS_CODES } from 'node:http'
import zlib from 'node:zlib'
import type { Http1Response } from '@edgestack/common'
import type { CacheObject } from './cache-object.js'
import type { Counters } from './counters.js'
import { deliverHeadersOf, hasConditionalOrRange, notModified } from './deliver.js'
import { deliverEsiBody, type EsiIncluder, esiHead } from './esi/esi-deliver.js'
import { acceptsGzip } from './gzip/accept-encoding.js'
import type { GzipParams } from './gzip/fetch-coding.js'
import { gunzippedHead, gunzipInto } from './gzip/gunzip-delivery.js'
import { GzipOutput } from './gzip/gzip-output.js'
import { type BereqObj, type BerespObj, fieldOf, type ObjView, type Policy, type ReqObj, type RespObj } from './policy.js'
import { lengthOf, RangeSlicer, rangedHead, rangeFor } from './range.js'
import { guruMeditation } from './synth.js'

/** Up to this plain size a complete gzip object is inflated in one call for a plain client, once. */
const SMALL_GUNZIP_BYTES = 64 * 1024

export interface ResponderDeps {
  policy: Policy
  counters: Counters
  via: string
  /** http_gzip_support and gzip_buffer, as they are now. */
  gzip(): GzipParams
  /** Milliseconds, the router's (tests pass their own). */
  clock(): number
  /** A stored object now holds `bytes` more (its plain copy): the store counts them. */
  grew(obj: CacheObject, bytes: number): void
}

/**
 * What the client gets from a stored object or from nothing (vcl_deliver, vcl_synth,
 * vcl_backend_error): X-Varnish, Age and Via; 304 and Range from complete objects; the
 * guru meditation page.
 */
export class Responder {
  readonly #d: ResponderDeps
  /** Runs ESI includes (client-request.ts sets it once the request handler exists). */
  esi: EsiIncluder | undefined

  constructor(deps: ResponderDeps) {
    this.#d = deps
  }

  /** Writes a stored (or still arriving) object: X-Varnish, Age, Via; 304 and Range on complete ones. */
  deliver(r: ReqObj, res: Http1Response, obj: CacheObject, hit: boolean): void {
    const now = this.#d.clock()
    // obj.hits as varnish counts it: the delivery that filled the object is not a hit.
    if (hit) obj.hits++
    const xv = hit ? `${r.xid} ${obj.xid}` : String(r.xid)
    // --brotli: the copy made beside a complete gzip object, for a client that takes br.
    const br = r.takesBrotli === true ? obj.brotli : undefined
    if (br === undefined && obj.gzip && !acceptsGzip(r.headers)) {
      const gzip = this.#d.gzip()
      // An ESI include's fragment goes into the page inflated whatever http_gzip_support
      // (ved_deliver gunzips a gzip fragment; the page's own gzip is made around it).
      if (gzip.support || (r.esiLevel ?? 0) > 0) {
        this.#deliverGunzipped(r, res, obj, xv, now, gzip.buffer)
        return
      }
    }
    if (obj.state !== 'complete') {
      this.#deliverStreaming(r, res, obj, xv, now)
      return
    }
    let status = obj.status
    let reason = obj.reason
    let body = br ?? obj.body
    let headers = (br !== undefined ? (obj.brotliHeaders as string[]) : deliverHeadersOf(obj)).concat(
      'X-Varnish',
      xv,
      'Age',
      String(obj.ageSeconds(now)),
      'Via',
      this.#d.via,
    )
    // The common hit asks for neither validation nor a range: one cheap scan decides.
    const asks = hasConditionalOrRange(r.headers)
    const esi = obj.esi !== undefined && r.esiOff !== true
    if (asks && (r.method === 'GET' || r.method === 'HEAD') && notModified(r.headers, obj)) {
      status = 304
      reason = 'Not Modified'
      body = undefined
    } else if (esi) {
      this.#deliverEsi(r, res, obj, headers, now)
      return
    } else if (asks && status === 200 && body !== undefined) {
      // varnishd ranges HEAD too: the head says what the GET would get.
      const plan = rangeFor(r.headers, headers, body.length)
      if (plan !== undefined && plan.kind !== 'full') {
        ;({ status, reason, headers } = rangedHead(plan, headers, body.length))
        body = plan.kind === 'partial' ? body.subarray(plan.start, plan.end + 1) : undefined
      }
    }
    // builtin.vcl's vcl_deliver changes nothing: no resp or obj view to build, no VCL to run.
    if (this.#d.policy.isBuiltin(r, 'deliver')) {
      r.vsl?.call('deliver', 'deliver')
      res.send(status, headers, body, reason)
      return
    }
    const resp: RespObj = { status, reason, proto: r.proto, headers }
    if (this.#notDelivered(this.#d.policy.deliver(r, resp, objView(obj, now)), r, res)) return
    res.send(resp.status, resp.headers, body, resp.reason)
  }

  /**
   * An object stored with ESI instructions: vcl_deliver sees resp.do_esi (obj.can_esi) and may
   * turn it off; then the page is assembled (src/esi/), without a length and with a weak ETag,
   * and without ranges (varnishd knows no length to range on).
   */
  #deliverEsi(r: ReqObj, res: Http1Response, obj: CacheObject, headers: string[], now: number): void {
    const resp: RespObj = { status: obj.status, reason: obj.reason, proto: r.proto, headers, doEsi: true }
    if (this.#builtinDeliver(r) ? false : this.#notDelivered(this.#d.policy.deliver(r, resp, objView(obj, now)), r, res)) return
    const esi = this.esi
    if (!resp.doEsi || esi === undefined || obj.esi === undefined) {
      res.send(resp.status, resp.headers, obj.body, resp.reason)
      return
    }
    const gzip = this.#d.gzip()
    // Without http_gzip_support nothing is gunzipped for a client: the page goes as it came.
    const gzipped = obj.esiGzip && (r.esiLevel ?? 0) === 0 && (!gzip.support || acceptsGzip(r.headers))
    const head = esiHead(resp.headers)
    if (gzipped) head.push('Content-Encoding', 'gzip')
    // Corked: the head leaves with the page's first parts (deliverEsiBody corks each step too).
    const socket = res.socket
    socket.cork()
    res.writeHead(resp.status, head, resp.reason)
    // A HEAD has no body: no include is fetched for it (varnishd pushes no ESI filter then).
    if (r.method === 'HEAD') res.end()
    else deliverEsiBody(esi, r, gzipped ? new GzipOutput(res, gzip) : res, obj.esi, obj.body as Buffer)
    socket.uncork()
  }

  /**
   * A gzip object to a client that does not take gzip (cnt_transmit's gunzip VDP): no
   * Content-Encoding, the plain length when the object is complete, no Range (varnishd ranges
   * what it sends, whose length it knows only then), and the body inflated on its way out.
   */
  #deliverGunzipped(r: ReqObj, res: Http1Response, obj: CacheObject, xv: string, now: number, buffer: number): void {
    const complete = obj.state === 'complete'
    const base = deliverHeadersOf(obj).concat('X-Varnish', xv, 'Age', String(obj.ageSeconds(now)), 'Via', this.#d.via)
    const headers = gunzippedHead(base, complete ? obj.plainLength : undefined)
    if (complete && hasConditionalOrRange(r.headers) && (r.method === 'GET' || r.method === 'HEAD') && notModified(r.headers, obj)) {
      res.send(304, headers, undefined, 'Not Modified')
      return
    }
    const resp: RespObj = { status: obj.status, reason: obj.reason, proto: r.proto, headers }
    if (this.#builtinDeliver(r) ? false : this.#notDelivered(this.#d.policy.deliver(r, resp, objView(obj, now)), r, res)) return
    if (r.method === 'HEAD' || resp.status === 204 || resp.status === 304) {
      res.writeHead(resp.status, resp.headers, resp.reason)
      res.end()
      return
    }
    const body = obj.body
    if (complete && obj.stored && body !== undefined && obj.plainLength !== undefined && obj.plainLength <= SMALL_GUNZIP_BYTES) {
      // A small stored object inflates in one call, once (a pass streams through zlib): zlib's stream costs more in setup
      // and thread-pool hops than inflating some KiB takes, and a one-call inflate still costs
      // as much as a hit (bench scenario 14). The output is bounded by the length measured when
      // the object was stored.
      let plain = obj.plainCopy
      if (plain === undefined) {
        try {
          plain = zlib.gunzipSync(body, { maxOutputLength: Math.max(1, obj.plainLength) })
        } catch {
          this.synth(r, res, 503, 'Service Unavailable')
          return
        }
        if (obj.body === body) {
          obj.plainCopy = plain
          obj.size += plain.length
          this.#d.grew(obj, plain.length)
        }
      }
      // One write for head and body, as a plain hit's (send() states the length itself).
      res.send(resp.status, resp.headers, plain, resp.reason)
      return
    }
    const unfollow = obj.follow(
      gunzipInto(
        res,
        buffer,
        () => res.writeHead(resp.status, resp.headers, resp.reason),
        () => this.synth(r, res, 503, 'Service Unavailable'),
      ),
    )
    res.once('close', unfollow)
  }

  /**
   * A miss, or a client following one, while the body still arrives: as varnishd streams it,
   * a Range is served from the backend's Content-Length (without one, the whole body).
   */
  #deliverStreaming(r: ReqObj, res: Http1Response, obj: CacheObject, xv: string, now: number): void {
    const headers = deliverHeadersOf(obj).concat('X-Varnish', xv, 'Age', String(obj.ageSeconds(now)), 'Via', this.#d.via)
    if (obj.contentLength !== undefined) headers.push('Content-Length', obj.contentLength)
    const resp: RespObj = { status: obj.status, reason: obj.reason, proto: r.proto, headers }
    if (this.#notDelivered(this.#d.policy.deliver(r, resp, objView(obj, now)), r, res)) return
    const slicer = rangeSlicer(r, res, resp)
    if (slicer === null) return
    res.writeHead(resp.status, resp.headers, resp.reason)
    const unfollow = obj.follow({
      data: (c) => {
        const part = slicer === undefined ? c : slicer.partOf(c, res)
        if (part !== undefined) res.write(part)
      },
      end: () => res.end(),
      error: () => res.destroy(),
    })
    res.once('close', unfollow)
  }

  /** builtin.vcl's vcl_deliver alone, which delivers: not run, only logged. */
  #builtinDeliver(r: ReqObj): boolean {
    if (!this.#d.policy.isBuiltin(r, 'deliver')) return false
    r.vsl?.call('deliver', 'deliver')
    return true
  }

  /** vcl_deliver chose synth or restart: carried out here; true when so. */
  #notDelivered(next: 'deliver' | 'synth' | 'restart', r: ReqObj, res: Http1Response): boolean {
    if (next === 'deliver') return false
    if (next === 'restart') this.restart(r, res)
    else this.synth(r, res, r.synthStatus ?? 503, r.synthReason)
    return true
  }

  /** VCL's `return (restart)`: vcl_recv again, or a 503 where the router cannot restart. */
  restart(r: ReqObj, res: Http1Response): void {
    if (r.restart) r.restart()
    else this.synth(r, res, 503, 'Service Unavailable')
  }

  backendError(r: ReqObj, res: Http1Response, bereq: BereqObj): void {
    const beresp = { ...berespOf(503, 'Backend fetch failed', []), body: undefined as string | undefined }
    this.#d.policy.backendError(bereq, beresp)
    if (beresp.body !== undefined && beresp.headers.length > 0) {
      // vcl_backend_error made the response: it is delivered, not re-made by vcl_synth.
      this.#d.counters.s_synth++
      if (res.headersSent) res.destroy()
      else res.send(beresp.status, beresp.headers.concat('X-Varnish', String(r.xid), 'Via', this.#d.via), beresp.body, beresp.reason)
      return
    }
    this.synth(r, res, beresp.status, beresp.reason, beresp.body)
  }

  /** vcl_synth with builtin.vcl's page (varnishd's "Guru Meditation"). */
  synth(r: ReqObj, res: Http1Response, status: number, reason?: string, body?: string): void {
    this.#d.counters.s_synth++
    if (res.headersSent) {
      res.destroy()
      return
    }
    const why = reason ?? STATUS_CODES[status % 1000] ?? 'Unknown'
    const resp: RespObj = {
      status,
      reason: why,
      proto: r.proto,
      headers: ['Date', new Date(this.#d.clock()).toUTCString(), 'Content-Type', 'text/html; charset=utf-8', 'Retry-After', '5', 'X-Varnish', String(r.xid), 'Via', this.#d.via],
      body: body ?? guruMeditation(status, why, r.xid),
    }
    if (this.#d.policy.synth(r, resp) === 'restart' && r.restart) {
      r.restart()
      return
    }
    // cache_http.c http_SetStatus: VCL may signal in the thousands (synth(1333)); the status
    // line carries the last three digits.
    res.send(resp.status % 1000, resp.headers, resp.body, resp.reason)
  }
}

/**
 * varnishd's range filter on a response about to stream (a miss, a pass, a hit-for-miss):
 * with a Range and status 200, `resp` becomes the 206 (the slicer to cut the body with) or
 * the 416, which is sent here (null: nothing more to write). Undefined: the whole body.
 */
export function rangeSlicer(r: ReqObj, res: Http1Response, resp: RespObj): RangeSlicer | undefined | null {
  if (resp.status !== 200 || fieldOf(r.headers, 'range') === undefined) return undefined
  const length = lengthOf(resp.headers)
  const plan = rangeFor(r.headers, resp.headers, length)
  if (plan === undefined || plan.kind === 'full') return undefined
  const head = rangedHead(plan, resp.headers, length)
  if (plan.kind === 'unsatisfiable') {
    res.send(head.status, head.headers, undefined, head.reason)
    return null
  }
  resp.status = head.status
  resp.reason = head.reason
  resp.headers = head.headers
  return new RangeSlicer(plan.start, plan.end)
}

/** `obj.*` as vcl_hit and vcl_deliver read it. */
export function objView(obj: CacheObject, now: number): ObjView {
  return {
    status: obj.status,
    reason: obj.reason,
    headers: obj.headers,
    ttl: obj.ttlLeft(now),
    grace: obj.grace,
    keep: obj.keep,
    hits: obj.hits,
    age: obj.ageSeconds(now),
    canEsi: obj.esi !== undefined,
    // An ESI page varnishd keeps gzip'ed (esi_gzip) is OF_GZIPED there; ours is kept inflated.
    gzip: obj.gzip || obj.esiGzip,
  }
}

export function berespOf(
  status: number,
  reason: string,
  headers: string[],
  fresh = { ttl: -1, grace: 0, keep: 0 },
): BerespObj {
  return { status, reason, proto: 'HTTP/1.1', headers, ttl: fresh.ttl, grace: fresh.grace, keep: fresh.keep, uncacheable: false }
}
