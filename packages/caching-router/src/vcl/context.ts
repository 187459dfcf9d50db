import type { MatchLimits } from '@edgestack/common'

/**
 * The runtime side of a compiled VCL program: what the router hands to each subroutine.
 * The router owns these objects and reads them back after a subroutine returns (for example
 * `req.backend_hint` to pick the backend, `beresp.ttl` to store the object).
 */

interface Field {
  name: string
  values: string[]
}

/**
 * A case-insensitive multi-map of header fields, read and written the way VCL does. Built from
 * a flat list it stays that list until the first write: most subroutines only read a few
 * fields, and a scan of ten fields costs less than building a map per request step.
 */
export class VclHeaders {
  // The flat `[name, value, ...]` list until the first write; then undefined and #fields rules.
  #raw: readonly string[] | undefined
  // lower-case name -> [name as first written, values in order]
  #fields: Map<string, Field> | undefined
  /**
   * Set by every write: the router copies headers back into its own flat list only when a
   * subroutine changed them, so a VCL that only reads costs no copy.
   */
  changed = false

  /** From node's `rawHeaders`-style flat list `[name, value, name, value, ...]` (not copied: do not change it while in use). */
  static fromRaw(raw: readonly string[]): VclHeaders {
    const h = new VclHeaders()
    h.#raw = raw
    return h
  }

  #map(): Map<string, Field> {
    if (this.#fields !== undefined) return this.#fields
    const fields = new Map<string, Field>()
    const raw = this.#raw ?? []
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i] as string
      const key = name.toLowerCase()
      const f = fields.get(key)
      if (f) f.values.push(raw[i + 1] as string)
      else fields.set(key, { name, values: [raw[i + 1] as string] })
    }
    this.#raw = undefined
    this.#fields = fields
    return fields
  }

  /**
   * `req.http.X` reads the first field named X, as varnish's http_GetHdr does; several fields
   * of one name are only joined by a `std.collect()`-like step, which the router may do first.
   */
  get(name: string): string | undefined {
    return this.getLower(name.toLowerCase())
  }

  /** get() for a name already in lower case (compiled VCL lowers its header names once). */
  getLower(key: string): string | undefined {
    const raw = this.#raw
    if (raw === undefined) return this.#map().get(key)?.values[0]
    const n = key.length
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i] as string
      if (name.length === n && name.toLowerCase() === key) return raw[i + 1]
    }
    return undefined
  }

  getAll(name: string): readonly string[] {
    return this.#map().get(name.toLowerCase())?.values ?? []
  }

  has(name: string): boolean {
    return this.getLower(name.toLowerCase()) !== undefined
  }

  /** `set X.http.Y = v` replaces every field named Y with one. */
  set(name: string, value: string): void {
    this.changed = true
    this.#map().set(name.toLowerCase(), { name, values: [value] })
  }

  append(name: string, value: string): void {
    this.changed = true
    const fields = this.#map()
    const key = name.toLowerCase()
    const f = fields.get(key)
    if (f) f.values.push(value)
    else fields.set(key, { name, values: [value] })
  }

  unset(name: string): void {
    this.changed = true
    this.#map().delete(name.toLowerCase())
  }

  /** `[name, value, name, value, ...]` for writing out with `writeHead`. */
  toRaw(): string[] {
    if (this.#raw !== undefined) return this.#raw.slice()
    const out: string[] = []
    for (const f of this.#map().values()) for (const v of f.values) out.push(f.name, v)
    return out
  }

  clone(): VclHeaders {
    const h = new VclHeaders()
    if (this.#raw !== undefined) h.#raw = this.#raw.slice()
    else {
      const fields = new Map<string, Field>()
      for (const [k, f] of this.#map()) fields.set(k, { name: f.name, values: [...f.values] })
      h.#fields = fields
    }
    return h
  }
}

/** A client, server or backend address as VCL's IP type sees it. */
export interface VclIp {
  readonly address: string
  readonly port: number
  readonly family: 4 | 6
}

/** A backend or a director: whatever `req.backend_hint` and `bereq.backend` hold. */
export interface VclBackendRef {
  readonly name: string
  /** True when this backend or, for a director, one of its members can take traffic. */
  healthy(): boolean
  /** The concrete backend to fetch from (a director picks one), or undefined when all are sick. */
  resolve(ctx: VclContext): VclResolvedBackend | undefined
  /** Seconds since the epoch the health last changed (VRT_Healthy's `changed`), if known. */
  readonly changed?: number
}

/** A concrete `backend` declaration, after defaults are applied. */
export interface VclResolvedBackend extends VclBackendRef {
  readonly host: string
  readonly port: number
  /** `.path`: a Unix-domain socket, in place of host and port (which are then 0.0.0.0 and 0). */
  readonly path?: string
  /** `.host_header`, sent as Host when the request has none. */
  readonly hostHeader?: string
  /** Seconds, or undefined for varnishd's parameter default. */
  readonly connectTimeout?: number
  readonly firstByteTimeout?: number
  readonly betweenBytesTimeout?: number
  readonly maxConnections?: number
}

/** Fields every HTTP message object (req, bereq, beresp, resp, obj) has. */
export interface VclMessage {
  proto: string
  http: VclHeaders
}

export interface VclRequest extends VclMessage {
  method: string
  url: string
  backendHint: VclBackendRef | undefined
  /** Seconds; undefined when not set (then the object's own TTL decides). */
  ttl: number | undefined
  grace: number | undefined
  hashAlwaysMiss: boolean
  hashIgnoreBusy: boolean
  /** Read-only to VCL; the router increments it on `restart` and runs vcl_recv again with this req. */
  restarts: number
  readonly xid: string
  readonly esiLevel: number
  /**
   * `req.time`: seconds since the epoch when the request head was in (varnishd's t_req); kept
   * across restarts, and an ESI include's is its top request's (ved_include: req->t_req =
   * preq->t_req), so `req_top.time` reads the same.
   */
  readonly time: number
  /** `req.esi` (VCL 4.0): false turns ESI processing off for this request's response. */
  esi: boolean
  readonly isHitmiss: boolean
  readonly isHitpass: boolean
}

export interface VclBackendRequest extends VclMessage {
  method: string
  url: string
  backend: VclBackendRef | undefined
  /** `unset bereq.body;` in vcl_backend_fetch: do not send the request body. */
  bodyUnset: boolean
  connectTimeout: number | undefined
  firstByteTimeout: number | undefined
  betweenBytesTimeout: number | undefined
  readonly uncacheable: boolean
  readonly xid: string
  /** Read-only to VCL; the router increments it on `retry` and runs vcl_backend_fetch again. */
  retries: number
  readonly isBgfetch: boolean
}

export interface VclBackendResponse extends VclMessage {
  status: number
  reason: string
  /** Seconds. */
  ttl: number
  grace: number
  keep: number
  uncacheable: boolean
  doStream: boolean
  doGzip: boolean
  doGunzip: boolean
  doEsi: boolean
  /** Set by `set beresp.body = ...` (vcl_backend_error); undefined keeps the fetched body. */
  body: string | undefined
  readonly age: number
  readonly was304: boolean
  readonly backendName: string
  /** `beresp.backend`: the backend the response came from (a director's pick). */
  readonly backend?: VclBackendRef
}

export interface VclResponse extends VclMessage {
  status: number
  reason: string
  /** Set by `set resp.body = ...` or `synthetic(...)` (vcl_synth); undefined keeps the body. */
  body: string | undefined
  readonly isStreaming: boolean
  /** `resp.do_esi` (VCL 4.1): defaults to obj.can_esi; false delivers the stored body as it is. */
  doEsi: boolean
}

/** The cached object in vcl_hit and vcl_deliver: read-only to VCL. */
export interface VclObject extends VclMessage {
  readonly status: number
  readonly reason: string
  readonly ttl: number
  readonly grace: number
  readonly keep: number
  readonly age: number
  readonly hits: number
  readonly uncacheable: boolean
  /** The object has ESI instructions (it was stored with beresp.do_esi and holds ESI). */
  readonly canEsi: boolean
  /** The body is stored gzip'ed (OF_GZIPED), for resp.filters' gunzip. */
  readonly gzip?: boolean
  /** Seconds since the epoch the object was fetched. */
  readonly time: number
}

/**
 * Everything a compiled subroutine reads and writes. Objects not available in the running
 * subroutine are undefined (the compiler has already rejected VCL that would read them there,
 * so the router only has to fill what varnish fills for that step).
 */
export interface VclContext {
  req: VclRequest
  /** `req_top`: the request at the top of an ESI tree; undefined when req is that request. */
  readonly top?: VclRequest
  bereq?: VclBackendRequest
  beresp?: VclBackendResponse
  resp?: VclResponse
  obj?: VclObject
  readonly client: VclIp
  /** The local end of the TCP connection (`local.ip`). */
  readonly local: VclIp
  /** The address the client connected to (`server.ip`): a PROXY header's destination, else `local`. */
  readonly server?: VclIp
  /** The peer of the TCP connection; `client.ip` differs when PROXY protocol is used. */
  readonly remote: VclIp
  /** `client.identity`, default the client address. */
  clientIdentity?: string
  readonly serverHostname: string
  readonly serverIdentity: string
  /** Seconds since the epoch, read by `now`; the router may fix it per request. */
  now(): number
  /** http_gzip_support as it is now (beresp.filters, resp.filters); undefined: on. */
  gzipSupport?(): boolean
  /** `hash_data(...)` in vcl_hash: feed the object's hash. */
  hashData(part: string): void
  /** `ban(...)` / `std.ban(...)`: apply a ban expression; returns an error text when invalid. */
  ban(expression: string): string | undefined
  /** `xkey.purge(keys)` / `xkey.softpurge(keys)`: how many objects were reached. */
  xkeyPurge?(keys: string, soft: boolean): number
  /** `std.log(...)`. */
  log(message: string): void
  /** pcre2_match_limit / pcre2_depth_limit for this request's matches (default varnishd's). */
  readonly regexLimits?: MatchLimits
  /** varnish 3's `purge;` in vcl_hit / vcl_miss: drop the looked-up object and its variants. */
  purge?(): void
  /** The subroutine running now (set by VclProgram.run); the shard director reads its side from it. */
  method?: VclMethod
  /**
   * The transaction's log (varnishlog's records) when the router writes one: VCL_call and
   * VCL_return of each run, std.log's VCL_Log, VCL_Error, std.timestamp. The backend side's
   * while a backend subroutine runs.
   */
  vsl?: VclTrace
  /**
   * `req.hash`: the SHA-256 vcl_hash's hash_data() calls built (cache_hash.c, each part then a
   * NUL), vcl_hash being run for it if the request has not needed it yet.
   */
  digest?(): Uint8Array
}

/** What VCL writes to a transaction's log (the router's Tx, vsl-records.ts). */
export interface VclTrace {
  call(method: VclMethod, action: string): void
  vclLog(text: string): void
  vclError(text: string): void
  timestamp(label: string): void
}

/** The subroutines varnish runs, named without their `vcl_` prefix. */
export type VclMethod =
  | 'recv'
  | 'pipe'
  | 'pass'
  | 'hash'
  | 'purge'
  | 'hit'
  | 'miss'
  | 'deliver'
  | 'synth'
  | 'backend_fetch'
  | 'backend_response'
  | 'backend_error'
  | 'init'
  | 'fini'

/** What a subroutine returned: the action and, for synth/error/pass, its arguments. */
export interface VclReturn {
  readonly action: string
  /** `synth(status, reason)` / `error(status, reason)`. */
  readonly status?: number
  readonly reason?: string
  /** `pass(DURATION)` in vcl_backend_response: the hit-for-pass TTL in seconds. */
  readonly ttl?: number
}
