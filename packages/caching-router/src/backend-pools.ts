import { formatAddress } from '@edgestack/common'
import { Backend } from './backend.js'
import type { VclResolvedBackend } from './vcl/index.js'

interface SharedPool {
  readonly pool: Backend
  /** The VCL backends (of every loaded VCL) that fetch through this pool. */
  readonly users: Set<VclResolvedBackend>
}

/**
 * The connection pools of the VCL backends, made on a backend's first fetch. The backend a
 * director picked goes from VCL to the socket as an object, never as a name looked up again,
 * so two VCLs declaring one name at two addresses cannot be mixed up; backends of any VCL
 * that name the same address share one pool, as varnishd's do (cache_conn_pool.c, VCP_Ref
 * finds the pool by endpoint): after `vcl.use` of a VCL with the same backend the next fetch
 * reuses the idle connection the previous VCL left, rather than opening a second one.
 */
export class BackendPools {
  readonly #byAddress = new Map<string, SharedPool>()
  readonly #byBackend = new Map<VclResolvedBackend, SharedPool>()
  readonly #connectTimeoutMs: () => number
  readonly #idleTimeoutMs: () => number

  /** connect_timeout and backend_idle_timeout, as they are when a pool is made. */
  constructor(connectTimeoutMs: () => number, idleTimeoutMs: () => number) {
    this.#connectTimeoutMs = connectTimeoutMs
    this.#idleTimeoutMs = idleTimeoutMs
  }

  of(b: VclResolvedBackend): Backend {
    const known = this.#byBackend.get(b)
    if (known !== undefined) return known.pool
    const key = b.path ?? formatAddress({ host: b.host, port: b.port })
    let shared = this.#byAddress.get(key)
    if (shared === undefined) {
      const pool = new Backend({ host: b.host, port: b.port }, { connectTimeoutMs: this.#connectTimeoutMs(), idleTimeoutMs: this.#idleTimeoutMs(), socketPath: b.path })
      shared = { pool, users: new Set() }
      this.#byAddress.set(key, shared)
    }
    shared.users.add(b)
    this.#byBackend.set(b, shared)
    return shared.pool
  }

  /** A discarded VCL's last request is done: a pool no other VCL's backend uses goes (in-flight fetches finish first). */
  release(backends: Iterable<VclResolvedBackend>): Promise<void> {
    const closing: Promise<void>[] = []
    for (const b of backends) {
      const shared = this.#byBackend.get(b)
      if (shared === undefined) continue
      this.#byBackend.delete(b)
      shared.users.delete(b)
      if (shared.users.size > 0) continue
      for (const [key, s] of this.#byAddress) if (s === shared) this.#byAddress.delete(key)
      closing.push(shared.pool.close())
    }
    return Promise.all(closing).then(() => undefined)
  }

  close(): Promise<void> {
    return this.release([...this.#byBackend.keys()])
  }
}
