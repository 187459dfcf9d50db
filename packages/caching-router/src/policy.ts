import type { MatchLimits } from '@edgestack/common'
import type { VclResolvedBackend } from './vcl/index.js'
import type { Tx } from './vsl-records.js'

/**
 * The router's decisions, shaped like varnishd's request and fetch state machines
 * (varnish-cache `cache_req_fsm.c` / `cache_fetch.c`) so that a compiled VCL program can drive
 * them: each method is one VCL subroutine, reads and writes the objects VCL sees (req, bereq,
 * beresp, resp, obj) and returns the action VCL would `return (...)`. The one Policy is
 * VclPolicy (vcl-policy.ts): `-b` and the article's flags are VCL too (config/flags-vcl.ts).
 *
 * Headers are flat `[name, value, ...]` lists, as received, so the hot path builds no maps.
 */

export interface ReqObj {
  method: string
  url: string
  proto: string
  headers: string[]
  /**
   * The fields the client's Connection named, as they were when the request came in
   * (undefined: none): never forwarded, while a field VCL adds under such a name is.
   */
  connectionNamed?: Set<string>
  readonly xid: number
  /** client.ip and server.ip: the PROXY header's source and destination on a PROXY listener. */
  readonly clientIp: string
  readonly serverIp: string
  /** Their ports (0 where there are none), for std.port(). */
  readonly clientPort?: number
  readonly serverPort?: number
  /** remote.ip and local.ip: the TCP connection's own ends (the PROXY sender's, behind one). */
  readonly socket?: { readonly remoteAddress?: string; readonly remotePort?: number; readonly localAddress?: string; readonly localPort?: number }
  /** `req.hash_always_miss`: fetch even when a fresh object exists. */
  hashAlwaysMiss: boolean
  /** `req.hash_ignore_busy`: do not wait for a fetch of the same object in progress. */
  hashIgnoreBusy: boolean
  /** Set by synth(): the status and reason vcl_synth sees. */
  synthStatus?: number
  synthReason?: string
  /** VclPolicy's per-request state (vcl-request-state.ts's RequestState, with its VclContext). */
  policyState?: unknown
  /**
   * VCL's `return (restart)`: run vcl_recv again with this request (set by client-request.ts
   * before vcl_recv; undefined only for a request refused before it, where a restart is a 503).
   */
  restart?: () => void
  /**
   * The request as it came in, before VCL changed it (varnishd's req->http0): what an ESI
   * include's sub-request starts from.
   */
  http0?: readonly string[]
  /** `req.esi_level`: 0 for a client's request, n for an ESI include n levels down. */
  esiLevel?: number
  /** `req_top`: the client's request at the top of an ESI tree (undefined: this one). */
  top?: ReqObj
  /** `req.esi = false` (VCL 4.0): this request's response is not ESI-processed. */
  esiOff?: boolean
  /** This request's records in `-n`'s log (undefined: no log, or an ESI include). */
  vsl?: Tx
  /** `--brotli`: the client's Accept-Encoding (after vcl_recv) takes br. */
  takesBrotli?: boolean
}

export interface BereqObj {
  method: string
  url: string
  proto: string
  headers: string[]
  /** The concrete backend to fetch from (undefined: none healthy, a 503). */
  backend: VclResolvedBackend | undefined
  readonly uncacheable: boolean
  readonly xid: number
  readonly isBgfetch: boolean
  /** `unset bereq.body`. */
  bodyUnset: boolean
  /** `bereq.retries`: how many times vcl_backend_response said `retry` (max_retries bounds it). */
  retries?: number
  /** The request's policyState, carried to the backend side (also for background fetches). */
  policyState?: unknown
  /** Seconds; undefined: the first_byte_timeout / between_bytes_timeout parameters. */
  firstByteTimeout?: number
  betweenBytesTimeout?: number
  /** This backend request's records in `-n`'s log. */
  vsl?: Tx
}

export interface BerespObj {
  status: number
  reason: string
  proto: string
  headers: string[]
  /** Seconds, as varnish computed them from the response (RFC 9111, see ttl.ts). */
  ttl: number
  grace: number
  keep: number
  uncacheable: boolean
  /**
   * `beresp.do_stream` (default true): false keeps the object from clients until its whole
   * body arrived, so a fetch that fails part way is a 503 rather than a cut-off 200.
   */
  doStream?: boolean
  /**
   * A targeted field (RFC 9213, CDN-Cache-Control) set ttl/grace/keep: builtin.vcl's own
   * Cache-Control check gives way to it (builtin-native.ts).
   */
  targeted?: boolean
  /** The fetch was a revalidation answered 304 (beresp.was_304): the kept object, refreshed. */
  was304?: boolean
  /** `beresp.do_esi`: the body is parsed for ESI when stored (src/esi/). */
  doEsi?: boolean
  /** `beresp.do_gzip` / `beresp.do_gunzip`: the body is compressed / inflated when stored (src/gzip/). */
  doGzip?: boolean
  doGunzip?: boolean
}

export interface RespObj {
  status: number
  reason: string
  proto: string
  headers: string[]
  /** For vcl_synth: the synthetic body. */
  body?: string
  /** `resp.do_esi` for vcl_deliver: in, whether the object can be ESI-processed; out, whether it will be. */
  doEsi?: boolean
}

/** `obj.*` in vcl_hit: the stored object, read-only. */
export interface ObjView {
  readonly status: number
  readonly reason: string
  readonly headers: readonly string[]
  readonly ttl: number
  readonly grace: number
  readonly keep: number
  readonly hits: number
  readonly age: number
  /** `obj.can_esi`. */
  readonly canEsi?: boolean
  /** Stored gzip'ed (resp.filters). */
  readonly gzip?: boolean
}

export type RecvAction = 'hash' | 'pass' | 'pipe' | 'purge' | 'synth'
export type HitAction = 'deliver' | 'pass' | 'miss' | 'synth' | 'restart'
export type MissAction = 'fetch' | 'pass' | 'synth' | 'restart'
export type BackendResponseAction = 'deliver' | 'abandon' | 'retry'

export interface Policy {
  recv(req: ReqObj): RecvAction
  /** vcl_hash: the parts hashed together (hash_data calls). */
  hash(req: ReqObj): string
  hit(req: ReqObj, obj: ObjView): HitAction
  miss(req: ReqObj): MissAction
  pass(req: ReqObj): 'fetch' | 'synth' | 'restart'
  pipe(req: ReqObj, bereq: BereqObj): 'pipe' | 'synth'
  backendFetch(bereq: BereqObj): 'fetch' | 'abandon'
  backendResponse(bereq: BereqObj, beresp: BerespObj): BackendResponseAction
  backendError(bereq: BereqObj, beresp: BerespObj & { body?: string }): 'deliver'
  /** `obj` is the stored object (undefined for a pass or hit-for-miss response: no object). */
  deliver(req: ReqObj, resp: RespObj, obj?: ObjView): 'deliver' | 'synth' | 'restart'
  synth(req: ReqObj, resp: RespObj): 'deliver' | 'restart'
  /** vcl_purge, after a `purge` from recv dropped the object: the synthetic answer (default 200 Purged). */
  purge(req: ReqObj): 'synth' | 'restart'
  /**
   * Whether `step` is builtin.vcl's for this request, which changes nothing and returns its
   * default (hit: deliver, miss: fetch, deliver: deliver): the router then skips calling it.
   */
  isBuiltin(req: ReqObj, step: 'hit' | 'miss' | 'deliver'): boolean
  /** The client's response is finished or abandoned: per-request state may go (a VCL is released). */
  done(req: ReqObj): void
  /** Where the policy reaches the router: bans (VCL `ban()`) and the log. */
  attach?(router: PolicyHost): void
}

export interface PolicyHost {
  /** Adds a ban from a `ban()` expression; returns an error text when it is invalid. */
  ban(expression: string): string | undefined
  log(message: string): void
  /** `xkey.purge` / `xkey.softpurge` on the store. */
  xkeyPurge?(keys: string, soft: boolean): number
  /** pcre2_match_limit and friends, as they are now (param.set applies to the next match). */
  regexLimits(): MatchLimits
  /** http_gzip_support, as it is now (beresp.filters, resp.filters). */
  gzipSupport?(): boolean
}

/**
 * getHeader with the length compared first: on the per-request path most names differ in
 * length, so few are lower-cased at all.
 */
export function fieldOf(headers: readonly string[], lowerName: string): string | undefined {
  const n = lowerName.length
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    if (name.length === n && name.toLowerCase() === lowerName) return headers[i + 1]
  }
  return undefined
}
