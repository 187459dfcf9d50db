import { STATUS_CODES } from 'node:http'
import type {
  BackendResponseAction,
  BereqObj,
  BerespObj,
  HitAction,
  MissAction,
  ObjView,
  Policy,
  PolicyHost,
  RecvAction,
  ReqObj,
  RespObj,
} from './policy.js'
import { builtinBackendFetch, builtinBackendResponse } from './builtin-native.js'
import { BackendState, clientIpOf, localIpOf, ObjAdapter, RequestState, remoteIpOf, socketLocalIpOf } from './vcl-request-state.js'
import {
  type VclBackendRef,
  type VclBackendRequest,
  type VclContext,
  VclHeaders,
  type VclRegistry,
  type VclReturn,
  startBackendResponse,
  startResponse,
} from './vcl/index.js'

function synthOf(req: ReqObj, ret: VclReturn, status = 503, reason?: string): 'synth' {
  req.synthStatus = ret.status ?? status
  req.synthReason = ret.reason ?? reason
  return 'synth'
}

// `return (restart)`: vcl_recv again, at most max_restarts times, then a 503 (cache_req_fsm.c
// cnt_restart: "Too many restarts", req.restarts already one past the parameter).
function restartOf(req: ReqObj, ctx: VclContext, maxRestarts: number): 'restart' | 'synth' {
  if (++ctx.req.restarts <= maxRestarts) return 'restart'
  req.synthStatus = 503
  req.synthReason = undefined
  return 'synth'
}

// A VCL failure (`return (fail)`, a value refused at run time) is a 503, as in varnishd.
function failed(req: ReqObj): 'synth' {
  req.synthStatus = 503
  req.synthReason = 'VCL failed'
  return 'synth'
}

/** A backend subroutine's run, its VCL_call/VCL_return and VCL_Log going to the backend request's log. */
function onBackend<T>(ctx: VclContext, bereq: BereqObj, run: () => T): T {
  const client = ctx.vsl
  ctx.vsl = bereq.vsl
  try {
    return run()
  } finally {
    ctx.vsl = client
  }
}

/**
 * The router's Policy driven by compiled VCL: each seam method runs the matching subroutine
 * of the VCL the request started with (held from vcl_recv until the response is done, so
 * vcl.use and SIGHUP never change a request in flight) and copies what the VCL changed back
 * into the router's objects. Nothing is compiled here: the closures were built at load.
 */
export class VclPolicy implements Policy {
  readonly registry: VclRegistry
  #host: PolicyHost | undefined
  readonly #now: () => number
  readonly #maxRestarts: () => number

  /**
   * `nowMs`: the router's clock (tests pass their own), read as VCL's `now` in seconds;
   * `maxRestarts`: the max_restarts parameter as it is when a request restarts.
   */
  constructor(registry: VclRegistry, nowMs: () => number = Date.now, maxRestarts: () => number = () => 4) {
    this.registry = registry
    this.#now = () => nowMs() / 1000
    this.#maxRestarts = maxRestarts
  }

  attach(host: PolicyHost): void {
    this.#host = host
  }

  #state(req: ReqObj): RequestState {
    return req.policyState as RequestState
  }

  recv(req: ReqObj): RecvAction {
    let state = req.policyState as RequestState | undefined
    if (state === undefined) {
      // An ESI include runs under the VCL its top request holds (ved_include: req->vcl = preq->vcl).
      const top = req.top?.policyState as RequestState | undefined
      const program = top !== undefined ? this.registry.hold(top.program) : this.registry.acquire()
      state = new RequestState(program, (hashData, digest) =>
        program.newRequest({
          method: req.method,
          url: req.url,
          proto: req.proto,
          headers: req.headers,
          client: clientIpOf(req.clientIp, req.clientPort),
          server: localIpOf(req.serverIp, req.serverPort),
          // Behind a PROXY header these are the connection's own ends (varnishd's remote.ip,
          // local.ip); client.ip and server.ip are the header's.
          remote: req.socket ? remoteIpOf(req.socket.remoteAddress || req.clientIp, req.socket.remotePort) : undefined,
          local: req.socket ? socketLocalIpOf(req.socket.localAddress || req.serverIp, req.socket.localPort) : localIpOf(req.serverIp, req.serverPort),
          xid: String(req.xid),
          now: this.#now,
          hashData,
          digest,
          ban: this.#ban,
          xkeyPurge: this.#xkeyPurge,
          log: this.#log,
          regexLimits: this.#host?.regexLimits(),
          gzipSupport: this.#gzipSupport,
          esiLevel: req.esiLevel,
          top: top?.ctx.req,
          vsl: req.vsl,
        }),
      )
      req.policyState = state
    }
    const { program, ctx } = state
    let ret = program.run('recv', ctx)
    while (ret.action === 'restart') {
      if (restartOf(req, ctx, this.#maxRestarts()) === 'synth') return 'synth'
      ret = program.run('recv', ctx)
    }
    this.#fromReq(req, ctx)
    switch (ret.action) {
      case 'hash':
      case 'lookup':
        return 'hash'
      case 'pass':
      case 'pipe':
      case 'purge':
        return ret.action
      case 'synth':
      case 'error':
        return synthOf(req, ret)
      default:
        return failed(req)
    }
  }

  /** What vcl_recv changed in req, back into the router's request. */
  #fromReq(req: ReqObj, ctx: VclContext): void {
    const v = ctx.req
    req.method = v.method
    req.url = v.url
    if (v.http.changed) {
      req.headers = v.http.toRaw()
      v.http.changed = false
    }
    req.hashAlwaysMiss = v.hashAlwaysMiss
    req.hashIgnoreBusy = v.hashIgnoreBusy
    if (!v.esi) req.esiOff = true
    // req.backend_hint stays VCL's: a director is resolved when the fetch (or pipe) starts, on
    // the backend side, as varnishd's VRT_DirectorResolve; resolving here too would move a
    // round_robin twice a request.
  }

  hash(req: ReqObj): string {
    const state = this.#state(req)
    // The router also hashes other URLs of the request (RFC 9111 §4.4 invalidation).
    state.ctx.req.url = req.url
    state.key = undefined
    state.program.run('hash', state.ctx)
    return state.key ?? ''
  }

  purge(req: ReqObj): 'synth' | 'restart' {
    const { program, ctx } = this.#state(req)
    const ret = program.run('purge', ctx)
    if (ret.action === 'restart') return restartOf(req, ctx, this.#maxRestarts())
    return ret.action === 'synth' ? synthOf(req, ret, 200, 'Purged') : failed(req)
  }

  isBuiltin(req: ReqObj, step: 'hit' | 'miss' | 'deliver'): boolean {
    return this.#state(req).program.isBuiltinOnly(step)
  }

  hit(req: ReqObj, obj: ObjView): HitAction {
    const { program, ctx } = this.#state(req)
    const now = ctx.now()
    ctx.obj = new ObjAdapter(obj, now)
    const ret = program.run('hit', ctx)
    switch (ret.action) {
      case 'deliver':
      case 'pass':
      case 'miss':
        return ret.action
      case 'fetch':
        // varnish 3's `return (fetch)` from vcl_hit meant fetch anew.
        return 'miss'
      case 'restart':
        return restartOf(req, ctx, this.#maxRestarts())
      case 'synth':
      case 'error':
        return synthOf(req, ret)
      default:
        return failed(req)
    }
  }

  miss(req: ReqObj): MissAction {
    const { program, ctx } = this.#state(req)
    const ret = program.run('miss', ctx)
    switch (ret.action) {
      case 'fetch':
      case 'pass':
        return ret.action
      case 'restart':
        return restartOf(req, ctx, this.#maxRestarts())
      case 'synth':
      case 'error':
        return synthOf(req, ret)
      default:
        return failed(req)
    }
  }

  pass(req: ReqObj): 'fetch' | 'synth' | 'restart' {
    const { program, ctx } = this.#state(req)
    const ret = program.run('pass', ctx)
    if (ret.action === 'fetch') return 'fetch'
    if (ret.action === 'restart') return restartOf(req, ctx, this.#maxRestarts())
    if (ret.action === 'synth' || ret.action === 'error') return synthOf(req, ret)
    return failed(req)
  }

  pipe(req: ReqObj, bereq: BereqObj): 'pipe' | 'synth' {
    const { program, ctx } = this.#state(req)
    const vb = this.#startBereq(ctx, bereq)
    const ret = program.run('pipe', ctx)
    this.#fromBereq(bereq, vb, ctx)
    if (ret.action === 'pipe') return 'pipe'
    if (ret.action === 'synth' || ret.action === 'error') return synthOf(req, ret)
    return failed(req)
  }

  #startBereq(ctx: VclContext, bereq: BereqObj): VclBackendRequest {
    // The router has built bereq from req already (hop-by-hop fields gone, X-Varnish added,
    // GET for a miss), as startBackendRequest would.
    const vb: VclBackendRequest = {
      method: bereq.method,
      url: bereq.url,
      proto: bereq.proto,
      http: VclHeaders.fromRaw(bereq.headers),
      backend: ctx.req.backendHint,
      bodyUnset: false,
      connectTimeout: undefined,
      firstByteTimeout: undefined,
      betweenBytesTimeout: undefined,
      uncacheable: bereq.uncacheable,
      xid: String(bereq.xid),
      retries: bereq.retries ?? 0,
      isBgfetch: bereq.isBgfetch,
    }
    ctx.bereq = vb
    return vb
  }

  #fromBereq(bereq: BereqObj, vb: VclBackendRequest, ctx: VclContext): void {
    bereq.method = vb.method
    bereq.url = vb.url
    if (vb.http.changed) bereq.headers = vb.http.toRaw()
    bereq.bodyUnset = vb.bodyUnset
    this.#toBackend(bereq, vb.backend, vb, ctx)
  }

  /** The concrete backend `ref` picks, and its timeouts, into the router's bereq. */
  #toBackend(bereq: BereqObj, ref: VclBackendRef | undefined, vb: VclBackendRequest | undefined, ctx: VclContext): void {
    const b = ref?.resolve(ctx)
    bereq.backend = b
    // varnish: bereq.* timeouts when VCL set them, else the backend's own, else the parameters.
    bereq.firstByteTimeout = vb?.firstByteTimeout ?? b?.firstByteTimeout
    bereq.betweenBytesTimeout = vb?.betweenBytesTimeout ?? b?.betweenBytesTimeout
  }

  /** VCL's bereq for the backend side, made on first use when vcl_backend_fetch was builtin's. */
  #bereqView(state: BackendState, bereq: BereqObj): VclBackendRequest {
    const { ctx } = state.request
    if (state.bereq === undefined) {
      state.bereq = this.#startBereq(ctx, bereq)
      state.bereq.bodyUnset = bereq.bodyUnset
    } else ctx.bereq = state.bereq
    return state.bereq
  }

  backendFetch(bereq: BereqObj): 'fetch' | 'abandon' {
    // A retry comes back with the backend side's state: vcl_backend_fetch runs again for the request.
    if (bereq.policyState instanceof BackendState) bereq.policyState = bereq.policyState.request
    const request = bereq.policyState as RequestState
    const { program, ctx } = request
    if (program.isBuiltinOnly('backend_fetch')) {
      // The fetch goes to req.backend_hint, as builtin's vcl_backend_fetch leaves it. No VCL
      // bereq exists for this fetch (a director resolving it reads req then).
      builtinBackendFetch(bereq)
      bereq.vsl?.call('backend_fetch', 'fetch')
      ctx.bereq = undefined
      this.#toBackend(bereq, ctx.req.backendHint, undefined, ctx)
      bereq.policyState = new BackendState(request, undefined)
      return 'fetch'
    }
    const vb = this.#startBereq(ctx, bereq)
    bereq.policyState = new BackendState(request, vb)
    const ret = onBackend(ctx, bereq, () => program.run('backend_fetch', ctx))
    this.#fromBereq(bereq, vb, ctx)
    // `return (error)` and `fail` end as the router's 503 for an abandoned fetch.
    return ret.action === 'fetch' ? 'fetch' : 'abandon'
  }

  backendResponse(bereq: BereqObj, beresp: BerespObj): BackendResponseAction {
    const state = bereq.policyState as BackendState
    const { program, ctx } = state.request
    if (program.isBuiltinOnly('backend_response')) {
      builtinBackendResponse(bereq.uncacheable, beresp)
      bereq.vsl?.call('backend_response', 'deliver')
      return 'deliver'
    }
    const vb = this.#bereqView(state, bereq)
    const v = startBackendResponse(ctx, {
      status: beresp.status,
      reason: beresp.reason,
      headers: beresp.headers,
      ttl: beresp.ttl,
      grace: beresp.grace,
      keep: beresp.keep,
      // A pass's response is uncacheable from the start, as varnishd shows it to VCL.
      uncacheable: beresp.uncacheable || bereq.uncacheable,
      was304: beresp.was304,
      // The backend the fetch went to: the director's pick, not bereq.backend (the director).
      backend: bereq.backend,
      backendName: bereq.backend?.name ?? vb.backend?.name ?? '',
    })
    v.http.changed = false
    const ret = onBackend(ctx, bereq, () => program.run('backend_response', ctx))
    beresp.status = v.status
    beresp.reason = v.reason
    if (v.http.changed) beresp.headers = v.http.toRaw()
    beresp.ttl = v.ttl
    beresp.grace = v.grace
    beresp.keep = v.keep
    beresp.uncacheable = v.uncacheable
    // Streaming is the default (BerespObj leaves it unset, as the native builtin path does):
    // only VCL's `set beresp.do_stream = false` is carried back.
    if (!v.doStream) beresp.doStream = false
    if (v.doEsi) beresp.doEsi = true
    if (v.doGzip) beresp.doGzip = true
    if (v.doGunzip) beresp.doGunzip = true
    switch (ret.action) {
      case 'deliver':
        return 'deliver'
      case 'retry':
        return 'retry'
      case 'pass':
        // Hit-for-pass (`return (pass(DURATION))`): the router keeps a hit-for-miss marker for
        // that long, which also sends later requests straight to the backend.
        beresp.uncacheable = true
        beresp.ttl = ret.ttl ?? 120
        return 'deliver'
      default:
        return 'abandon'
    }
  }

  backendError(bereq: BereqObj, beresp: BerespObj & { body?: string }): 'deliver' {
    const state = bereq.policyState
    if (!(state instanceof BackendState)) return 'deliver'
    const { program, ctx } = state.request
    this.#bereqView(state, bereq)
    const v = startBackendResponse(ctx, { status: beresp.status, reason: beresp.reason, headers: beresp.headers, ttl: 0, grace: 0, keep: 0 })
    onBackend(ctx, bereq, () => program.run('backend_error', ctx))
    beresp.status = v.status
    beresp.reason = v.reason
    beresp.headers = v.http.toRaw()
    beresp.body = v.body
    return 'deliver'
  }

  deliver(req: ReqObj, resp: RespObj, obj?: ObjView): 'deliver' | 'synth' | 'restart' {
    const { program, ctx } = this.#state(req)
    // A pass has an object in varnish too, private to the request: the response as fetched.
    ctx.obj = new ObjAdapter(obj ?? { status: resp.status, reason: resp.reason, headers: resp.headers, ttl: 0, grace: 0, keep: 0, hits: 0, age: 0 }, ctx.now())
    const v = startResponse(ctx, { status: resp.status, reason: resp.reason, headers: resp.headers, doEsi: resp.doEsi })
    v.http.changed = false
    const ret = program.run('deliver', ctx)
    resp.status = v.status
    resp.reason = v.reason
    if (resp.doEsi !== undefined) resp.doEsi = v.doEsi
    if (v.http.changed) resp.headers = v.http.toRaw()
    if (ret.action === 'deliver') return 'deliver'
    if (ret.action === 'synth') return synthOf(req, ret)
    if (ret.action === 'restart') return restartOf(req, ctx, this.#maxRestarts())
    return failed(req)
  }

  synth(req: ReqObj, resp: RespObj): 'deliver' | 'restart' {
    const state = req.policyState as RequestState | undefined
    // A request the router refused before vcl_recv ran (no VCL held): builtin's page as is.
    if (state === undefined) return 'deliver'
    const { program, ctx } = state
    let v = startResponse(ctx, { status: resp.status, reason: resp.reason, headers: resp.headers })
    let ret = program.run('synth', ctx)
    // cache_req_fsm.c: a restart from vcl_synth past max_restarts delivers the synthetic
    // response as it is; the restart that goes past it (cnt_restart, "Too many restarts")
    // runs vcl_synth once more with a 503.
    while (ret.action === 'restart' && ctx.req.restarts <= this.#maxRestarts()) {
      if (++ctx.req.restarts <= this.#maxRestarts()) return 'restart'
      v = startResponse(ctx, { status: 503, reason: STATUS_CODES[503] as string, headers: resp.headers })
      ret = program.run('synth', ctx)
    }
    resp.status = v.status
    resp.reason = v.reason
    resp.headers = v.http.toRaw()
    if (v.body !== undefined) resp.body = v.body
    return 'deliver'
  }

  done(req: ReqObj): void {
    const state = req.policyState as RequestState | undefined
    if (state === undefined) return
    state.program.endTask(state.ctx)
    this.registry.release(state.program)
  }

  readonly #ban = (expression: string): string | undefined => this.#host?.ban(expression) ?? 'bans are not available'
  readonly #log = (message: string): void => this.#host?.log(message)
  readonly #gzipSupport = (): boolean => this.#host?.gzipSupport?.() ?? true
  readonly #xkeyPurge = (keys: string, soft: boolean): number => this.#host?.xkeyPurge?.(keys, soft) ?? 0
}
