import type { MatchLimits } from '@edgestack/common'
import type { VclBackendRef, VclBackendRequest, VclBackendResponse, VclContext, VclIp, VclObject, VclRequest, VclResponse, VclTrace } from './context.js'
import { VclHeaders } from './context.js'

/** What the router knows when a request head has been read. */
export interface RequestInit {
  readonly method: string
  readonly url: string
  readonly proto: string
  /** node's rawHeaders (`[name, value, ...]`) or ready headers. */
  readonly headers: readonly string[] | VclHeaders
  readonly client: VclIp
  readonly local: VclIp
  /** server.ip, when it differs from local.ip (a PROXY header's destination). */
  readonly server?: VclIp
  readonly remote?: VclIp
  readonly xid: string
  readonly restarts?: number
  /** An ESI sub-request: its depth and the top request's VCL view (req_top). */
  readonly esiLevel?: number
  readonly top?: VclRequest
  /** `req.time` in seconds; default: now (an include passes its top request's). */
  readonly time?: number
  readonly serverHostname?: string
  readonly serverIdentity?: string
  readonly now?: () => number
  readonly hashData?: (part: string) => void
  /** `req.hash` (see VclContext.digest). */
  readonly digest?: () => Uint8Array
  readonly ban?: (expression: string) => string | undefined
  readonly log?: (message: string) => void
  /** The request's log records (varnishlog), when written. */
  readonly vsl?: VclTrace
  readonly xkeyPurge?: (keys: string, soft: boolean) => number
  readonly regexLimits?: MatchLimits
  readonly gzipSupport?: () => boolean
}

/**
 * A plain VclContext for one client request, as varnish builds `req` from the request head.
 * The router may implement VclContext itself; this is the straightforward way.
 */
export function createRequestContext(init: RequestInit, defaultBackend?: VclBackendRef): VclContext {
  const req: VclRequest = {
    method: init.method,
    url: init.url,
    proto: init.proto,
    http: init.headers instanceof VclHeaders ? init.headers : VclHeaders.fromRaw(init.headers),
    // varnish starts every request with req.backend_hint set to the default (first) backend.
    backendHint: defaultBackend,
    ttl: undefined,
    grace: undefined,
    hashAlwaysMiss: false,
    hashIgnoreBusy: false,
    restarts: init.restarts ?? 0,
    xid: init.xid,
    esiLevel: init.esiLevel ?? 0,
    time: init.time ?? init.top?.time ?? (init.now ?? (() => Date.now() / 1000))(),
    esi: true,
    isHitmiss: false,
    isHitpass: false,
  }
  return {
    req,
    top: init.top,
    client: init.client,
    local: init.local,
    remote: init.remote ?? init.client,
    server: init.server ?? init.local,
    // One shape for every context (no spread): read on every `~` of the request.
    regexLimits: init.regexLimits,
    serverHostname: init.serverHostname ?? 'localhost',
    serverIdentity: init.serverIdentity ?? init.serverHostname ?? 'localhost',
    now: init.now ?? (() => Date.now() / 1000),
    hashData: init.hashData ?? (() => {}),
    ban: init.ban ?? (() => 'bans are not supported here'),
    log: init.log ?? (() => {}),
    method: undefined,
    vsl: init.vsl,
    digest: init.digest,
    xkeyPurge: init.xkeyPurge,
    gzipSupport: init.gzipSupport,
  }
}

/**
 * varnish's bereq from req when the backend side starts (cache_fetch.c): a miss fetches with
 * GET (a HEAD miss still fetches the whole object); a pass keeps the client's method.
 */
export function startBackendRequest(ctx: VclContext, opts: { xid: string; uncacheable: boolean; isBgfetch?: boolean }): VclBackendRequest {
  const req = ctx.req
  const bereq: VclBackendRequest = {
    method: opts.uncacheable ? req.method : req.method === 'HEAD' ? 'GET' : req.method,
    url: req.url,
    proto: req.proto,
    http: req.http.clone(),
    backend: req.backendHint,
    bodyUnset: false,
    connectTimeout: undefined,
    firstByteTimeout: undefined,
    betweenBytesTimeout: undefined,
    uncacheable: opts.uncacheable,
    xid: opts.xid,
    retries: 0,
    isBgfetch: opts.isBgfetch ?? false,
  }
  ctx.bereq = bereq
  return bereq
}

export interface ResponseInit {
  readonly status: number
  readonly reason: string
  readonly proto?: string
  readonly headers: readonly string[] | VclHeaders
}

function headersOf(h: readonly string[] | VclHeaders): VclHeaders {
  return h instanceof VclHeaders ? h : VclHeaders.fromRaw(h)
}

/** beresp for vcl_backend_response (ttl/grace/keep from the cache policy) or vcl_backend_error. */
export function startBackendResponse(
  ctx: VclContext,
  r: ResponseInit & { ttl: number; grace: number; keep: number; age?: number; uncacheable?: boolean; was304?: boolean; backendName?: string; backend?: VclBackendRef },
): VclBackendResponse {
  // In a pass varnishd hands vcl_backend_response no lifetime at all (ttl, grace and keep 0,
  // as seen with varnishd 7.1 in vcl-fetch-differential.test.ts), whatever the headers say.
  const pass = ctx.bereq?.uncacheable ?? false
  const beresp: VclBackendResponse = {
    status: r.status,
    reason: r.reason,
    proto: r.proto ?? 'HTTP/1.1',
    http: headersOf(r.headers),
    ttl: pass ? 0 : r.ttl,
    grace: pass ? 0 : r.grace,
    keep: pass ? 0 : r.keep,
    uncacheable: r.uncacheable ?? pass,
    doStream: true,
    doGzip: false,
    doGunzip: false,
    doEsi: false,
    body: undefined,
    age: r.age ?? 0,
    was304: r.was304 ?? false,
    backendName: r.backendName ?? ctx.bereq?.backend?.name ?? '',
    backend: r.backend,
  }
  ctx.beresp = beresp
  return beresp
}

/** resp for vcl_deliver (from the object or beresp) or vcl_synth. */
export function startResponse(ctx: VclContext, r: ResponseInit & { isStreaming?: boolean; doEsi?: boolean }): VclResponse {
  const resp: VclResponse = {
    status: r.status,
    reason: r.reason,
    proto: r.proto ?? 'HTTP/1.1',
    http: headersOf(r.headers),
    body: undefined,
    isStreaming: r.isStreaming ?? false,
    doEsi: r.doEsi ?? false,
  }
  ctx.resp = resp
  return resp
}

/** obj for vcl_hit and vcl_deliver. */
export function setObject(ctx: VclContext, obj: VclObject): void {
  ctx.obj = obj
}
