import { createHash } from 'node:crypto'
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
  // The digest of `key` as it was when last asked for.
  #digest: { key: string | undefined; value: Uint8Array } | undefined
  constructor(
    readonly program: VclProgram,
    newCtx: (hashData: (part: string) => void, digest: () => Uint8Array) => VclContext,
  ) {
    this.ctx = newCtx(
      (part) => {
        this.key = this.key === undefined ? part : `${this.key}\0${part}`
      },
      () => this.digest(),
    )
  }

  /**
   * varnish's req->digest: SHA-256 over each hash_data() part followed by a NUL (VRT_hashdata's
   * field separator). varnishd runs vcl_hash after vcl_recv for every request, pass and pipe
   * included; the router runs it only for a lookup, so here it runs on first need.
   */
  digest(): Uint8Array {
    if (this.key === undefined) {
      const method = this.ctx.method
      this.program.run('hash', this.ctx)
      this.ctx.method = method
    }
    const key = this.key
    let d = this.#digest
    if (d?.key !== key || d === undefined) {
      const h = createHash('sha256')
      if (key !== undefined) h.update(`${key}\0`, 'latin1')
      d = this.#digest = { key, value: h.digest() }
    }
    return d.value
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
  get gzip(): boolean {
    return this.view.gzip ?? false
  }
}

// client.ip and server.ip are read-only in VCL: a request from the same address as the last
// one (the usual case: one proxy or few clients in front) reuses its object.
function ipOf(address: string, port: number): VclIp {
  return Object.freeze({ address, port, family: address.includes(':') ? 6 : 4 })
}

/** ipOf that keeps its last answer: most requests come from the address the previous one did. */
function lastIpOf(): (address: string, port?: number) => VclIp {
  let last: VclIp | undefined
  return (address, port = 0) => {
    if (last?.address !== address || last.port !== port) last = ipOf(address, port)
    return last
  }
}

export const clientIpOf = lastIpOf()
export const localIpOf = lastIpOf()
export const remoteIpOf = lastIpOf()
export const socketLocalIpOf = lastIpOf()
