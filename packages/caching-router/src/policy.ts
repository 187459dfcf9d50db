import { getHeader } from '@edgestack/common'

/**
 * The router's decisions, shaped like varnishd's request and fetch state machines
 * (varnish-cache `cache_req_fsm.c` / `cache_fetch.c`) so that a compiled VCL program can drive
 * them: each method is one VCL subroutine, reads and writes the objects VCL sees (req, bereq,
 * beresp, resp, obj) and returns the action VCL would `return (...)`.
 *
 * Headers are flat `[name, value, ...]` lists, as received, so the hot path builds no maps.
 */

export interface ReqObj {
  method: string
  url: string
  proto: string
  headers: string[]
  /** `req.backend_hint`: a backend name the router knows. */
  backendHint: string
  readonly xid: number
  readonly clientIp: string
  readonly serverIp: string
  /** `req.hash_always_miss`: fetch even when a fresh object exists. */
  hashAlwaysMiss: boolean
  /** `req.hash_ignore_busy`: do not wait for a fetch of the same object in progress. */
  hashIgnoreBusy: boolean
  /** Set by synth(): the status and reason vcl_synth sees. */
  synthStatus?: number
  synthReason?: string
  /** The policy's own per-request state (a VCL policy keeps its VclContext here). */
  policyState?: unknown
  /**
   * VCL's `return (restart)`: run vcl_recv again with this request (set by the router for
   * policies that may restart; undefined means a restart is a 503).
   */
  restart?: () => void
}

export interface BereqObj {
  method: string
  url: string
  proto: string
  headers: string[]
  backend: string
  readonly uncacheable: boolean
  readonly xid: number
  readonly isBgfetch: boolean
  /** `unset bereq.body`. */
  bodyUnset: boolean
  /** The request's policyState, carried to the backend side (also for background fetches). */
  policyState?: unknown
  /** Seconds; undefined: the first_byte_timeout / between_bytes_timeout parameters. */
  firstByteTimeout?: number
  betweenBytesTimeout?: number
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
  readonly backend: string
  /** The fetch was a revalidation answered 304 (beresp.was_304): the kept object, refreshed. */
  was304?: boolean
}

export interface RespObj {
  status: number
  reason: string
  proto: string
  headers: string[]
  /** For vcl_synth: the synthetic body. */
  body?: string
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
}

export type RecvAction = 'hash' | 'pass' | 'pipe' | 'purge' | 'synth'
export type HitAction = 'deliver' | 'pass' | 'miss' | 'synth' | 'restart'
export type MissAction = 'fetch' | 'pass' | 'synth' | 'restart'
export type BackendResponseAction = 'deliver' | 'abandon'

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
  purge?(req: ReqObj): 'synth' | 'restart'
  /**
   * Whether `step` is builtin.vcl's for this request, which changes nothing and returns its
   * default (hit: deliver, miss: fetch, deliver: deliver): the router then skips calling it.
   * Undefined: compare the method with builtinPolicy's.
   */
  isBuiltin?(req: ReqObj, step: 'hit' | 'miss' | 'deliver'): boolean
  /** The client's response is finished or abandoned: per-request state may go (a VCL is released). */
  done?(req: ReqObj): void
  /**
   * Where the policy reaches the router: bans (VCL `ban()`), and backends named by address
   * rather than declared up front (a VCL loaded later may bring new ones).
   */
  attach?(router: PolicyHost): void
}

export interface PolicyHost {
  /** Adds a ban from a `ban()` expression; returns an error text when it is invalid. */
  ban(expression: string): string | undefined
  log(message: string): void
}

// builtin.vcl's vcl_req_method: the methods varnish treats as HTTP; others it pipes.
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'PUT', 'POST', 'TRACE', 'OPTIONS', 'DELETE', 'PATCH'])
const HAS_UPPER = /[A-Z]/
const NO_STORE_SURROGATE = /no-store/i
const NO_STORE_PRIVATE = /no-store|private/i
const NO_CACHE = /no-cache/i

/**
 * varnish-cache's `bin/varnishd/builtin.vcl` (7.x) in TypeScript: what varnishd does with no
 * VCL of its own, or after a user's subroutine falls through.
 */
export const builtinPolicy: Policy = {
  recv(req) {
    const host = fieldOf(req.headers, 'host')
    // vcl_req_host: hosts are case-insensitive (RFC 9110 §4.2.3), so one object per host.
    if (host !== undefined && HAS_UPPER.test(host)) setFirst(req.headers, 'host', host.toLowerCase())
    if (host === undefined && req.proto === 'HTTP/1.1') return synthOf(req, 400, 'Bad Request')
    if (req.method === 'PRI') return synthOf(req, 405, 'Method Not Allowed')
    // builtin.vcl pipes unknown methods; we pass them (a fetch, with framing we control) so a
    // method we do not understand never turns the client's connection into a raw tunnel.
    if (!KNOWN_METHODS.has(req.method)) return 'pass'
    if (req.method !== 'GET' && req.method !== 'HEAD') return 'pass'
    if (hasCredentials(req.headers)) return 'pass'
    return 'hash'
  },
  hash(req) {
    const host = fieldOf(req.headers, 'host')
    return `${req.url}\0${host ?? req.serverIp}`
  },
  hit: () => 'deliver',
  miss: () => 'fetch',
  pass: () => 'fetch',
  pipe: () => 'pipe',
  backendFetch(bereq) {
    if (bereq.method === 'GET') bereq.bodyUnset = true
    return 'fetch'
  },
  backendResponse(bereq, beresp) {
    if (bereq.uncacheable) return 'deliver'
    const surrogate = getHeader(beresp.headers, 'surrogate-control')
    const cc = getHeader(beresp.headers, 'cache-control')
    // RFC 9111 §5.2.2.4, where builtin.vcl is looser: `no-cache` with a validator is stored and
    // revalidated on every use (ttl.ts gives it ttl 0 and a keep) rather than never stored.
    const revalidateOnly = beresp.ttl === 0 && beresp.keep > 0 && cc !== undefined && NO_CACHE.test(cc)
    if (
      (beresp.ttl <= 0 && !revalidateOnly) ||
      getHeader(beresp.headers, 'set-cookie') !== undefined ||
      (surrogate !== undefined && NO_STORE_SURROGATE.test(surrogate)) ||
      (surrogate === undefined && cc !== undefined && (NO_STORE_PRIVATE.test(cc) || (!revalidateOnly && NO_CACHE.test(cc)))) ||
      varyStar(beresp.headers)
    ) {
      // Hit-for-miss: remember for two minutes that this object is not cacheable, so later
      // requests neither wait for one another nor try to store it.
      beresp.ttl = 120
      beresp.uncacheable = true
    }
    return 'deliver'
  },
  backendError: () => 'deliver',
  deliver: () => 'deliver',
  synth: () => 'deliver',
}

/** Whether the policy's `step` is builtin.vcl's for this request (Policy.isBuiltin). */
export function isBuiltinStep(policy: Policy, req: ReqObj, step: 'hit' | 'miss' | 'deliver'): boolean {
  if (policy.isBuiltin !== undefined) return policy.isBuiltin(req, step)
  return policy[step] === builtinPolicy[step]
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

/** Authorization or Cookie present (builtin.vcl passes such requests), in one scan. */
function hasCredentials(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    if ((name.length === 13 || name.length === 6) && (name.toLowerCase() === 'authorization' || name.toLowerCase() === 'cookie')) {
      return true
    }
  }
  return false
}

/** RFC 9111 §4.1: a Vary containing `*` anywhere never matches a later request. */
export function varyStar(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    if ((headers[i] as string).toLowerCase() !== 'vary') continue
    for (const token of (headers[i + 1] as string).split(',')) if (token.trim() === '*') return true
  }
  return false
}

function synthOf(req: ReqObj, status: number, reason: string): 'synth' {
  req.synthStatus = status
  req.synthReason = reason
  return 'synth'
}

function setFirst(headers: string[], lowerName: string, value: string): void {
  for (let i = 0; i < headers.length; i += 2) {
    if ((headers[i] as string).toLowerCase() === lowerName) {
      headers[i + 1] = value
      return
    }
  }
}

const STATIC_URL = /\.(js|css|img)$/
const SOCKET_IO_URL = /^\/socket\.io\//
const WEBSOCKET = /websocket/i

/**
 * The article's VCL (seed/wss-with-nginx-and-varnish.md), hard-wired until the VCL compiler
 * drives the router: static files to `static`, the rest to `app`, websockets and socket.io
 * piped; everything else falls through to the built-in policy, as VCL subroutines do.
 */
export function articlePolicy(): Policy {
  return {
    ...builtinPolicy,
    recv(req) {
      const q = req.url.indexOf('?')
      req.backendHint = STATIC_URL.test(q === -1 ? req.url : req.url.slice(0, q)) ? 'static' : 'app'
      const upgrade = getHeader(req.headers, 'upgrade')
      if ((upgrade !== undefined && WEBSOCKET.test(upgrade)) || SOCKET_IO_URL.test(req.url)) return 'pipe'
      return builtinPolicy.recv(req)
    },
  }
}
