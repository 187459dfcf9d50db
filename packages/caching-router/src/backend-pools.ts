import { Backend } from './backend.js'
import type { VclResolvedBackend } from './vcl/index.js'

/**
 * The connection pool of each concrete VCL backend, made on its first fetch. The backend a
 * director picked is the key itself: it goes from VCL to the socket as an object, never as a
 * name looked up again, so two VCLs declaring one name at two addresses cannot be mixed up.
 */
export class BackendPools {
  readonly #pools = new Map<VclResolvedBackend, Backend>()
  readonly #connectTimeoutMs: () => number

  /** `connectTimeoutMs`: the connect_timeout parameter as it is when a pool is made. */
  constructor(connectTimeoutMs: () => number) {
    this.#connectTimeoutMs = connectTimeoutMs
  }

  of(b: VclResolvedBackend): Backend {
    let pool = this.#pools.get(b)
    if (pool === undefined) {
      pool = new Backend({ host: b.host, port: b.port }, { connectTimeoutMs: this.#connectTimeoutMs() })
      this.#pools.set(b, pool)
    }
    return pool
  }

  /** A discarded VCL's last request is done: its backends' pools go (in-flight fetches finish first). */
  release(backends: Iterable<VclResolvedBackend>): Promise<void> {
    const closing: Promise<void>[] = []
    for (const b of backends) {
      const pool = this.#pools.get(b)
      if (pool === undefined) continue
      this.#pools.delete(b)
      closing.push(pool.close())
    }
    return Promise.all(closing).then(() => undefined)
  }

  close(): Promise<void> {
    return this.release([...this.#pools.keys()])
  }
}
