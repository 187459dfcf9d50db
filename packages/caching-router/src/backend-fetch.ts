import type { Readable } from 'node:stream'
import { getHeader, hopByHopNames, httpDateNow, type Logger } from '@edgestack/common'
import type { FetchControl, FetchSink } from './backend.js'
import type { BackendPools } from './backend-pools.js'
import type { Counters } from './counters.js'
import type { EsiProgram } from './esi/esi-program.js'
import { parseEsi } from './esi/esi-parse.js'
import type { Params } from './params.js'
import type { BereqObj, ReqObj } from './policy.js'
import { vbeCounters } from './vbe-counters.js'
import { bereqFailed, bereqTx, loggedFetch } from './vsl-backend.js'
import type { TxLog } from './vsl-records.js'
import type { VclResolvedBackend } from './vcl/index.js'

export interface BackendFetchDeps {
  pools: BackendPools
  params: Params
  counters: Counters
  logger: Logger
  nextXid(): number
  /** `-n`'s log: each backend request's records. */
  txLog: TxLog
}

// varnishd's HTTPH_R_FETCH: a cache fill asks for the whole object, whatever this client asked.
const NOT_ON_FILL = new Set(['range', 'if-range', 'if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'expect'])
const NOT_ON_GZIP_FILL = new Set([...NOT_ON_FILL, 'accept-encoding'])
// varnishd answers Expect itself.
const NOT_ON_PASS = new Set(['expect'])

/**
 * The backend side's start (cache_fetch.c's vbf_stp_startfetch): bereq made from req, the
 * fetch started on the pool of the backend vcl_backend_fetch left in bereq, and a failure
 * counted as varnishd counts it.
 */
export class BackendFetch {
  readonly #d: BackendFetchDeps

  constructor(deps: BackendFetchDeps) {
    this.#d = deps
  }

  /**
   * VEP over a fetched body with `beresp.do_esi` (varnishd's fetch filter vfp_esi), counting
   * its parse errors and warnings in MAIN.esi_errors / esi_warnings as vep_error/vep_warn do.
   */
  parseEsi(body: Buffer, url: string): EsiProgram | undefined {
    return parseEsi(body, url, this.#d.params.esiFeatures, this.#d.counters)
  }

  /** bereq as varnishd builds it from req: hop-by-hop fields gone, X-Varnish added. */
  bereqOf(r: ReqObj, method: string, fill: boolean, uncacheable: boolean, bgfetch = false): BereqObj {
    const gzip = fill && this.#d.params.get('http_gzip_support') === 1
    // vbf_stp_mkbereq: with http_gzip_support a fill asks for gzip, whatever the client takes.
    const headers = forwardable(r.headers, gzip ? NOT_ON_GZIP_FILL : fill ? NOT_ON_FILL : NOT_ON_PASS, r.connectionNamed)
    if (gzip) headers.push('Accept-Encoding', 'gzip')
    const xid = this.#d.nextXid()
    headers.push('X-Varnish', String(xid))
    const log = this.#d.txLog.log
    return {
      vsl: log === undefined ? undefined : bereqTx(log, r, xid, bgfetch ? 'bgfetch' : uncacheable ? 'pass' : 'fetch'),
      method,
      url: r.url,
      proto: 'HTTP/1.1',
      headers,
      // Picked by the policy's vcl_backend_fetch step: a director resolves when the fetch starts.
      backend: undefined,
      uncacheable,
      xid,
      isBgfetch: bgfetch,
      bodyUnset: false,
      policyState: r.policyState,
    }
  }

  /** Undefined when there is no backend to ask (none was healthy): the caller's 503. */
  start(bereq: BereqObj, body: Readable | undefined, sink: FetchSink): FetchControl | undefined {
    const { pools, params, counters } = this.#d
    const tx = bereq.vsl
    if (bereq.backend === undefined) {
      // cache_fetch.c vbf_stp_startfetch: VDI_GetHdr found no backend.
      if (tx !== undefined) bereqFailed(tx, 'No backend')
      return undefined
    }
    counters.s_fetch++
    counters.backend_req++
    vbeCounters(bereq.backend).req++
    const logged = tx === undefined ? undefined : loggedFetch(tx, bereq, sink)
    const control = pools.of(bereq.backend).fetch(
      {
        method: bereq.method,
        url: bereq.url,
        headers: bereq.headers,
        body: bereq.bodyUnset ? undefined : body,
        firstByteTimeoutMs: (bereq.firstByteTimeout ?? params.get('first_byte_timeout')) * 1000,
        betweenBytesTimeoutMs: (bereq.betweenBytesTimeout ?? params.get('between_bytes_timeout')) * 1000,
        maxFieldBytes: params.get('http_resp_hdr_len'),
        maxHeadBytes: params.get('http_resp_size'),
      },
      logged?.sink ?? sink,
    )
    return logged === undefined ? control : logged.ended(control)
  }

  /** vcl_backend_fetch abandoned the fetch: the backend request ends without going out. */
  abandoned(bereq: BereqObj): void {
    if (bereq.vsl !== undefined) bereqFailed(bereq.vsl, 'Fetch abandoned')
  }

  /** `xid`: the request's (the client side's vxid), a field of the log line, as varnishlog groups by it. */
  failed(err: Error, xid: number, backend: VclResolvedBackend | undefined): void {
    const { counters, logger } = this.#d
    counters.fetch_failed++
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ECONNRESET') {
      counters.backend_fail++
      if (backend !== undefined) vbeCounters(backend).fail++
    }
    logger.warn(`backend fetch failed: ${err.message}`, { xid })
  }
}

/**
 * The request's fields a backend request carries: neither hop-by-hop (RFC 9110 §7.6.1), nor
 * named by the client's Connection when the request came in, nor in `drop`. One pass, one
 * copy. The Connection names are taken at receipt, as varnishd's http_DoConnection marks
 * them before vcl_recv: a field VCL sets under such a name is forwarded.
 */
function forwardable(headers: readonly string[], drop: Set<string>, named: Set<string> | undefined): string[] {
  const hop = hopByHopNames(undefined)
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    const lower = name.toLowerCase()
    if (!hop.has(lower) && !drop.has(lower) && !named?.has(lower)) out.push(name, headers[i + 1] as string)
  }
  return out
}

/** What the request's Connection fields name (present in the request), or undefined. */
export function connectionNamed(headers: readonly string[]): Set<string> | undefined {
  let connection: string[] | undefined
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      connection ??= []
      connection.push(headers[i + 1] as string)
    }
  }
  if (connection === undefined) return undefined
  const named = hopByHopNames(connection)
  const present = new Set<string>()
  for (let i = 0; i < headers.length; i += 2) {
    const lower = (headers[i] as string).toLowerCase()
    if (named.has(lower)) present.add(lower)
  }
  return present
}

/**
 * RFC 9110 §6.6.1: a recipient with a clock that forwards or stores a response without Date
 * adds one for when it was received (varnishd does so for every fetch).
 */
export function withDate(headers: string[]): string[] {
  if (getHeader(headers, 'date') === undefined) headers.push('Date', httpDateNow())
  return headers
}
