import type { HostPort } from '@edgestack/common'
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
import { fieldOf } from './policy.js'
import {
  type VclBackendRef,
  type VclBackendRequest,
  type VclContext,
  VclHeaders,
  type VclIp,
  type VclObject,
  type VclProgram,
  type VclRegistry,
  type VclResolvedBackend,
  type VclReturn,
  startBackendResponse,
  startResponse,
} from './vcl/index.js'

/** varnishd's max_restarts default: a VCL restarting more often gets a 503. */
const MAX_RESTARTS = 4

/** One client request under the VCL it started with (ReqObj.policyState). */
class RequestState {
  /**
   * What vcl_hash's hash_data() calls collect, joined by NUL as they come (undefined: none
   * yet), rather than an array joined afterwards.
   */
  key: string | undefined = undefined
  readonly ctx: VclContext
  constructor(
    readonly program: VclProgram,
    newCtx: (hashData: (part: string) => void) => VclContext,
  ) {
    this.ctx = newCtx((part) => {
      this.key = this.key === undefined ? part : `${this.key}\0${part}`
    })
  }
}

/**
 * One backend request (BereqObj.policyState once vcl_backend_fetch has run). `bereq` is VCL's
 * view of it, built only when a subroutine of the user's runs on the backend side.
 */
class BackendState {
  constructor(
    readonly request: RequestState,
    public bereq: VclBackendRequest | undefined,
  ) {}
}

/** obj in vcl_hit: its headers are only turned into VclHeaders if the VCL reads them. */
class ObjAdapter implements VclObject {
  readonly proto = 'HTTP/1.1'
  readonly uncacheable = false
  readonly time: number
  #http: VclHeaders | undefined
  constructor(
    readonly view: ObjView,
    now: number,
  ) {
    this.time = now - view.age
  }
  get http(): VclHeaders {
    this.#http ??= VclHeaders.fromRaw(this.view.headers)
    return this.#http
  }
  get status(): number {
    return this.view.status
  }
  get reason(): string {
    return this.view.reason
  }
  get ttl(): number {
    return this.view.ttl
  }
  get grace(): number {
    return this.view.grace
  }
  get keep(): number {
    return this.view.keep
  }
  get age(): number {
    return this.view.age
  }
  get hits(): number {
    return this.view.hits
  }
}

// One function for every request's `now`, rather than a closure each.
const nowSeconds = () => Date.now() / 1000

// client.ip and server.ip are read-only in VCL: a request from the same address as the last
// one (the usual case: one proxy or few clients in front) reuses its object.
function ipOf(address: string): VclIp {
  return Object.freeze({ address, port: 0, family: address.includes(':') ? 6 : 4 })
}

/** ipOf that keeps its last answer: most requests come from the address the previous one did. */
function lastIpOf(): (address: string) => VclIp {
  let last: VclIp | undefined
  return (address) => {
    if (last?.address !== address) last = ipOf(address)
    return last
  }
}

const clientIpOf = lastIpOf()
const localIpOf = lastIpOf()

function synthOf(req: ReqObj, ret: VclReturn, status = 503, reason?: string): 'synth' {
  req.synthStatus = ret.status ?? status
  req.synthReason = ret.reason ?? reason
  return 'synth'
}

// `return (restart)`: vcl_recv again, at most max_restarts times, then a 503 as in varnishd.
function restartOf(req: ReqObj, ctx: VclContext): 'restart' | 'synth' {
  return ++ctx.req.restarts > MAX_RESTARTS ? failed(req) : 'restart'
}

// A VCL failure (`return (fail)`, a value refused at run time) is a 503, as in varnishd.
function failed(req: ReqObj): 'synth' {
  req.synthStatus = 503
  req.synthReason = 'VCL failed'
  return 'synth'
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
  // VCL backends by the name the router knows them by: `name@host:port`, so two VCLs may
  // declare one name with different addresses.
  readonly #keys = new WeakMap<VclResolvedBackend, string>()
  readonly #addresses = new Map<string, HostPort>()

  constructor(registry: VclRegistry) {
    this.registry = registry
  }

  attach(host: PolicyHost): void {
    this.#host = host
  }

  /** What a `name@host:port` backend name stands for (RouterModel.backendAddress). */
  addressOf(name: string): HostPort | undefined {
    return this.#addresses.get(name)
  }

  /** The router's name for a concrete VCL backend. */
  keyOf(b: VclResolvedBackend): string {
    let key = this.#keys.get(b)
    if (key === undefined) {
      key = `${b.name}@${b.host}:${b.port}`
      this.#keys.set(b, key)
      this.#addresses.set(key, { host: b.host, port: b.port })
    }
    return key
  }

  #resolve(ref: VclBackendRef | undefined, ctx: VclContext): string {
    const b = ref?.resolve(ctx)
    // No healthy backend: a name the router does not know, so the fetch fails with a 503.
    return b === undefined ? '' : this.keyOf(b)
  }

  #state(req: ReqObj): RequestState {
    return req.policyState as RequestState
  }

  recv(req: ReqObj): RecvAction {
    let state = req.policyState as RequestState | undefined
    if (state === undefined) {
      const program = this.registry.acquire()
      state = new RequestState(program, (hashData) =>
        program.newRequest({
          method: req.method,
          url: req.url,
          proto: req.proto,
          headers: req.headers,
          client: clientIpOf(req.clientIp),
          local: localIpOf(req.serverIp),
          xid: String(req.xid),
          now: nowSeconds,
          hashData,
          ban: this.#ban,
          log: this.#log,
        }),
      )
      req.policyState = state
    }
    const { program, ctx } = state
    let ret = program.run('recv', ctx)
    while (ret.action === 'restart') {
      if (++ctx.req.restarts > MAX_RESTARTS) return failed(req)
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
    req.backendHint = this.#resolve(v.backendHint, ctx)
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
    if (ret.action === 'restart') return restartOf(req, ctx)
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
        return restartOf(req, ctx)
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
        return restartOf(req, ctx)
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
    if (ret.action === 'restart') return restartOf(req, ctx)
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
      retries: 0,
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
    bereq.backend = b === undefined ? '' : this.keyOf(b)
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
    const request = bereq.policyState as RequestState
    const { program, ctx } = request
    if (program.isBuiltinOnly('backend_fetch')) {
      // builtin.vcl's vcl_backend_fetch, without building VCL's bereq for it: a GET sends no
      // body, and the fetch goes to req.backend_hint.
      if (bereq.method === 'GET') bereq.bodyUnset = true
      this.#toBackend(bereq, ctx.req.backendHint, undefined, ctx)
      bereq.policyState = new BackendState(request, undefined)
      return 'fetch'
    }
    const vb = this.#startBereq(ctx, bereq)
    bereq.policyState = new BackendState(request, vb)
    const ret = program.run('backend_fetch', ctx)
    this.#fromBereq(bereq, vb, ctx)
    // `return (error)` and `fail` end as the router's 503 for an abandoned fetch.
    return ret.action === 'fetch' ? 'fetch' : 'abandon'
  }

  backendResponse(bereq: BereqObj, beresp: BerespObj): BackendResponseAction {
    const state = bereq.policyState as BackendState
    const { program, ctx } = state.request
    if (program.isBuiltinOnly('backend_response')) {
      builtinBackendResponse(bereq.uncacheable, beresp)
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
      backendName: vb.backend?.name ?? '',
    })
    v.http.changed = false
    const ret = program.run('backend_response', ctx)
    beresp.status = v.status
    beresp.reason = v.reason
    if (v.http.changed) beresp.headers = v.http.toRaw()
    beresp.ttl = v.ttl
    beresp.grace = v.grace
    beresp.keep = v.keep
    beresp.uncacheable = v.uncacheable
    switch (ret.action) {
      case 'deliver':
        return 'deliver'
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
    program.run('backend_error', ctx)
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
    const v = startResponse(ctx, { status: resp.status, reason: resp.reason, headers: resp.headers })
    v.http.changed = false
    const ret = program.run('deliver', ctx)
    resp.status = v.status
    resp.reason = v.reason
    if (v.http.changed) resp.headers = v.http.toRaw()
    if (ret.action === 'deliver') return 'deliver'
    if (ret.action === 'synth') return synthOf(req, ret)
    if (ret.action === 'restart') return restartOf(req, ctx)
    return failed(req)
  }

  synth(req: ReqObj, resp: RespObj): 'deliver' | 'restart' {
    const state = req.policyState as RequestState | undefined
    // A request the router refused before vcl_recv ran (no VCL held): builtin's page as is.
    if (state === undefined) return 'deliver'
    const { program, ctx } = state
    const v = startResponse(ctx, { status: resp.status, reason: resp.reason, headers: resp.headers })
    const ret = program.run('synth', ctx)
    // Past max_restarts the synthetic response is sent as it is.
    if (ret.action === 'restart' && ++ctx.req.restarts <= MAX_RESTARTS) return 'restart'
    resp.status = v.status
    resp.reason = v.reason
    resp.headers = v.http.toRaw()
    if (v.body !== undefined) resp.body = v.body
    return 'deliver'
  }

  done(req: ReqObj): void {
    const state = req.policyState as RequestState | undefined
    if (state !== undefined) this.registry.release(state.program)
  }

  readonly #ban = (expression: string): string | undefined => this.#host?.ban(expression) ?? 'bans are not available'
  readonly #log = (message: string): void => this.#host?.log(message)
}

const NO_STORE = /no-store/i
const NO_CACHE_STORE_PRIVATE = /no-cache|no-store|private/i

/**
 * builtin.vcl's vcl_backend_response (vcl/builtin.ts) as the router runs it when the user's VCL
 * defines no vcl_backend_response: the same decisions on the same values, without building
 * beresp for VCL. A pass's response gets no lifetime (startBackendResponse); anything else that
 * builtin.vcl finds uncacheable becomes a hit-for-miss marker for 120 s.
 * vcl-policy.test.ts compares it with the compiled builtin.vcl.
 */
export function builtinBackendResponse(bereqUncacheable: boolean, beresp: BerespObj): void {
  if (bereqUncacheable) {
    beresp.ttl = 0
    beresp.grace = 0
    beresp.keep = 0
    beresp.uncacheable = true
    return
  }
  const h = beresp.headers
  const surrogate = fieldOf(h, 'surrogate-control')
  const cc = fieldOf(h, 'cache-control')
  if (
    beresp.ttl <= 0 ||
    fieldOf(h, 'set-cookie') !== undefined ||
    (surrogate !== undefined && NO_STORE.test(surrogate)) ||
    (surrogate === undefined && cc !== undefined && NO_CACHE_STORE_PRIVATE.test(cc)) ||
    fieldOf(h, 'vary') === '*'
  ) {
    beresp.ttl = 120
    beresp.uncacheable = true
  }
}

/** Everything `-f FILE` adds to the router's model: the policy and the first VCL's backends. */
export interface VclRouterParts {
  policy: VclPolicy
  backends: Record<string, HostPort>
  defaultBackend: string
  backendAddress(name: string): HostPort | undefined
}

/** The router's part of a loaded VCL registry (whose active VCL was loaded from `-f`). */
export function vclRouterParts(registry: VclRegistry): VclRouterParts {
  const policy = new VclPolicy(registry)
  const active = registry.active as VclProgram
  const backends: Record<string, HostPort> = {}
  for (const b of active.compiled.backends.values()) {
    const key = policy.keyOf(b)
    backends[key] = policy.addressOf(key) as HostPort
  }
  const first = active.compiled.defaultBackend
  return {
    policy,
    backends,
    defaultBackend: first === undefined ? '' : policy.keyOf(first),
    backendAddress: (name) => policy.addressOf(name),
  }
}
