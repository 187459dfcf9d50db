import type { ObjView } from './policy.js'
import { type VclBackendRequest, type VclContext, VclHeaders, type VclIp, type VclObject, type VclProgram } from './vcl/index.js'

/** What VclPolicy keeps per request and per backend request, and VCL's views of router objects. */

/** One client request under the VCL it started with (ReqObj.policyState). */
export class RequestState {
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
export class BackendState {
  constructor(
    readonly request: RequestState,
    public bereq: VclBackendRequest | undefined,
  ) {}
}

/** obj in vcl_hit: its headers are only turned into VclHeaders if the VCL reads them. */
export class ObjAdapter implements VclObject {
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
  get canEsi(): boolean {
    return this.view.canEsi ?? false
  }
}

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

export const clientIpOf = lastIpOf()
export const localIpOf = lastIpOf()
