/**
 * A listener's server-side TLS session cache, for clients that resume by session ID (TLS 1.2
 * without tickets, TLS 1.3 stateful tickets) rather than with a ticket. Node keeps no such cache
 * itself (it turns OpenSSL's internal store off and asks through the `newSession` and
 * `resumeSession` events); stunnel keeps one of `sessionCacheSize` sessions per service.
 *
 * Bounded by count, oldest out first, and by age: an entry older than `timeoutS` is dropped when
 * it is asked for. OpenSSL checks the session's own lifetime on resumption as well, and checks
 * that it was made for the same service (the session ID context, see prepare.ts), so the cache
 * only has to be bounded, not careful.
 */
export class SessionCache {
  readonly #entries = new Map<string, { data: Buffer; bornMs: number }>()
  #size: number
  #timeoutMs: number

  constructor(size: number, timeoutS: number) {
    this.#size = size
    this.#timeoutMs = timeoutS * 1000
  }

  /** A reload keeps the sessions and applies the new bounds from the next store on. */
  resize(size: number, timeoutS: number): void {
    this.#size = size
    this.#timeoutMs = timeoutS * 1000
  }

  store(id: Buffer, data: Buffer): void {
    const key = id.toString('hex')
    this.#entries.delete(key)
    while (this.#entries.size >= this.#size) {
      const oldest = this.#entries.keys().next().value as string
      this.#entries.delete(oldest)
    }
    this.#entries.set(key, { data, bornMs: Date.now() })
  }

  fetch(id: Buffer): Buffer | undefined {
    const key = id.toString('hex')
    const entry = this.#entries.get(key)
    if (!entry) return undefined
    if (Date.now() - entry.bornMs > this.#timeoutMs) {
      this.#entries.delete(key)
      return undefined
    }
    return entry.data
  }

  get size(): number {
    return this.#entries.size
  }
}
