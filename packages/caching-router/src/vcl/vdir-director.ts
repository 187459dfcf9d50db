import type { VclBackendRef, VclContext, VclResolvedBackend } from './context.js'
import { hashStrands32 } from './vrt-hash.js'

interface Member {
  readonly backend: VclBackendRef
  readonly weight: number
}

export type VdirKind = 'round_robin' | 'fallback' | 'random' | 'hash'

/**
 * The directors vmod's round_robin, fallback, random and hash objects (vmod_directors.c's
 * "vdir" and the four files built on it): an ordered member list with weights. A chosen member
 * may itself be a director; it is resolved in turn, as VRT_DirectorResolve does.
 */
export class Director implements VclBackendRef {
  readonly name: string
  readonly kind: VdirKind
  #members: Member[] = []
  // round_robin's `nxt` and fallback's `cur` (round_robin.c, fall_back.c).
  #cursor = 0
  readonly #sticky: boolean

  // varnish 3's client and hash directors pick by a key taken from the request itself.
  readonly #keyOf: ((ctx: VclContext) => string) | undefined

  constructor(name: string, kind: VdirKind, opts: { keyOf?: (ctx: VclContext) => string; sticky?: boolean } = {}) {
    this.name = name
    this.kind = kind
    this.#keyOf = opts.keyOf
    this.#sticky = opts.sticky ?? false
  }

  /** vdir_add_backend: appended, duplicates allowed. */
  addBackend(backend: VclBackendRef, weight = 1): void {
    this.#members.push({ backend, weight })
  }

  /** vdir_remove_backend: the first occurrence only; fallback's current index follows it. */
  removeBackend(backend: VclBackendRef): void {
    const u = this.#members.findIndex((m) => m.backend === backend)
    if (u === -1) return
    this.#members.splice(u, 1)
    if (this.kind !== 'fallback') return
    if (u < this.#cursor) this.#cursor--
    else if (this.#cursor === this.#members.length) this.#cursor = 0
  }

  healthy(): boolean {
    return this.#members.some((m) => m.backend.healthy())
  }

  /** Healthy members and all members (backend.list's Probe column, vdir_list). */
  memberHealth(): { healthy: number; total: number } {
    return { healthy: this.#members.filter((m) => m.backend.healthy()).length, total: this.#members.length }
  }

  /** The latest health change among the members (vdir_any_healthy's `changed`). */
  get changed(): number {
    let c = 0
    for (const m of this.#members) c = Math.max(c, m.backend.changed ?? 0)
    return c
  }

  /**
   * hash's `.backend(STRING)`: picks now, among the members healthy now (hash.c calls
   * vdir_pick_be at once); undefined when none is. varnish 3's hash/client directors pick at
   * fetch time instead, by their key.
   */
  pickByKey(key: readonly (string | undefined)[]): VclBackendRef | undefined {
    return this.#pick(hashStrands32(key) / 0x1_0000_0000)
  }

  resolve(ctx: VclContext): VclResolvedBackend | undefined {
    const m = this.#members
    const n = m.length
    if (n === 0) return undefined
    switch (this.kind) {
      case 'round_robin': {
        let next = this.#cursor % n
        for (let i = 0; i < n; i++) {
          const be = (m[next] as Member).backend
          next = (next + 1) % n
          if (be.healthy()) {
            this.#cursor = next
            return be.resolve(ctx)
          }
        }
        this.#cursor = next
        return undefined
      }
      case 'fallback': {
        if (!this.#sticky) this.#cursor = 0
        for (let i = 0; i < n; i++) {
          const be = (m[this.#cursor] as Member).backend
          if (be.healthy()) return be.resolve(ctx)
          if (++this.#cursor === n) this.#cursor = 0
        }
        return undefined
      }
      case 'random':
        return this.#pick(Math.random())?.resolve(ctx)
      case 'hash':
        // Only varnish 3's declarations reach here (a 4.x hash director is never the hint).
        return this.#keyOf ? this.pickByKey([this.#keyOf(ctx)])?.resolve(ctx) : undefined
    }
  }

  // vdir_pick_be: `at` in [0, 1) of the total weight of the members healthy now.
  #pick(at: number): VclBackendRef | undefined {
    let total = 0
    const healthy = this.#members.filter((x) => x.backend.healthy())
    for (const x of healthy) total += x.weight
    if (total <= 0) return undefined
    const w = at * total
    let a = 0
    for (const x of healthy) {
      a += x.weight
      if (w < a) return x.backend
    }
    return undefined
  }
}
