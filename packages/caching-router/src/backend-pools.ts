import { Backend } from './backend.js'
import type { VclResolvedBackend } from './vcl/index.js'

interface Shared {
  readonly endpoint: string
  readonly pool: Backend
  /** VCL backends holding this endpoint's pool. */
  refs: number
}

/**
 * The connection pools behind the VCL backends. The backend a director picked goes from VCL
 * to the socket as an object (never a name looked up again); its pool is the one of its
 * endpoint, shared by every backend declaring that host and port, in this VCL or another, as
 * varnishd's tcp pools are (cache_tcp_pool.c: VTP_Ref / VTP_Rel): after `vcl.use` of a VCL
 * naming the same server, requests reuse the connections the old one opened. An endpoint's
 * pool closes when the last VCL backend holding it is released (its VCL discarded and idle).
 */
export class BackendPools {
  readonly #byBackend = new WeakMap<VclResolvedBackend, Shared>()
  readonly #held = new Set<VclResolvedBackend>()
  readonly #byEndpoint = new Map<string, Shared>()
  readonly #connectTimeoutMs: () => number
  readonly #idleTimeoutMs: () => number
  readonly #maxHeadBytes: () => number

  /** connect_timeout and backend_idle_timeout, as they are when a pool is made. */
  constructor(connectTimeoutMs: () => number, idleTimeoutMs: () => number, maxHeadBytes: () => number = () => 32 * 1024) {
    this.#connectTimeoutMs = connectTimeoutMs
    this.#idleTimeoutMs = idleTimeoutMs
    this.#maxHeadBytes = maxHeadBytes
  }

  of(b: VclResolvedBackend): Backend {
    const known = this.#byBackend.get(b)
    if (known !== undefined) return known.pool
    // The endpoint's key, made once per VCL backend (not per request).
    // A `.path` backend's endpoint is its Unix socket.
    const endpoint = b.path ?? `${b.host}\0${b.port}`
    let shared = this.#byEndpoint.get(endpoint)
    if (shared === undefined) {
      const opts = {
        connectTimeoutMs: this.#connectTimeoutMs(),
        idleTimeoutMs: this.#idleTimeoutMs(),
        socketPath: b.path,
        maxHeaderSize: this.#maxHeadBytes() + 1024,
      }
      shared = { endpoint, pool: new Backend({ host: b.host, port: b.port }, opts), refs: 0 }
      this.#byEndpoint.set(endpoint, shared)
    }
    shared.refs++
    this.#byBackend.set(b, shared)
    this.#held.add(b)
    return shared.pool
  }

  /** A discarded VCL's last request is done: its backends let go of their endpoints' pools. */
  release(backends: Iterable<VclResolvedBackend>): Promise<void> {
    const closing: Promise<void>[] = []
    for (const b of backends) {
      const shared = this.#byBackend.get(b)
      if (shared === undefined) continue
      this.#byBackend.delete(b)
      this.#held.delete(b)
      if (--shared.refs > 0) continue
      this.#byEndpoint.delete(shared.endpoint)
      // In-flight fetches finish first (undici's close is graceful).
      closing.push(shared.pool.close())
    }
    return Promise.all(closing).then(() => undefined)
  }

  /**
   * The router is closing (its clients drained first): every pool goes at once. A graceful
   * close would wait on a backend that holds a request unanswered, and `stop` with it.
   */
  close(): Promise<void> {
    const pools = new Set([...this.#held].map((b) => this.#byBackend.get(b)?.pool))
    this.#held.clear()
    this.#byEndpoint.clear()
    return Promise.all([...pools].map((p) => p?.destroy())).then(() => undefined)
  }
}
