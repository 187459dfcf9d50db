import { createHash } from 'node:crypto'
import type { VclBackendRef, VclContext, VclResolvedBackend } from './context.js'

/** Options of a `backend` declaration, after checking; durations in seconds. */
export type BackendOptions = Omit<VclResolvedBackend, 'healthy' | 'resolve'> & { readonly probe?: ProbeOptions }

/** A `probe`, with varnish's defaults filled in (vcc_backend.c / cache_backend_probe.c). */
export interface ProbeOptions {
  /** The raw request to send (from `.request`, or built from `.url`). */
  readonly request?: string
  readonly url: string
  readonly expectedResponse: number
  readonly timeout: number
  readonly interval: number
  readonly window: number
  readonly threshold: number
  readonly initial: number
}

// The fields are assigned from the options in the constructor.
export interface Backend extends BackendOptions {}

/** A concrete backend. Healthy unless a probe says otherwise (varnish: no probe, always healthy). */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: see the interface above
export class Backend implements VclResolvedBackend {
  #healthy = true
  /** `backend.set_health`: an operator's word over the probe's (varnishd's admin health). */
  admin: 'auto' | 'healthy' | 'sick' = 'auto'

  constructor(o: BackendOptions & { readonly none?: boolean }) {
    Object.assign(this, o)
    if (o.probe) this.#healthy = o.probe.initial >= o.probe.threshold
    if (o.none) this.#healthy = false
  }

  healthy(): boolean {
    return this.admin === 'auto' ? this.#healthy : this.admin === 'healthy'
  }

  /** What the probes last said, whatever the admin health (backend.list's Probe column). */
  probeHealthy(): boolean {
    return this.#healthy
  }

  /** Called by the probe runner. */
  setHealthy(healthy: boolean): void {
    this.#healthy = healthy
  }

  resolve(): VclResolvedBackend | undefined {
    return this.healthy() ? this : undefined
  }
}

interface Member {
  readonly backend: VclBackendRef
  readonly weight: number
}

/** The directors vmod's objects: created by `new x = directors.KIND();` in vcl_init. */
export class Director implements VclBackendRef {
  readonly name: string
  readonly kind: 'round_robin' | 'fallback' | 'random' | 'hash'
  #members: Member[] = []
  #next = 0

  // varnish 3's client and hash directors pick by a key taken from the request itself.
  #keyOf: ((ctx: VclContext) => string) | undefined

  constructor(name: string, kind: Director['kind'], keyOf?: (ctx: VclContext) => string) {
    this.name = name
    this.kind = kind
    this.#keyOf = keyOf
  }

  addBackend(backend: VclBackendRef | undefined, weight = 1): void {
    if (backend) this.#members.push({ backend, weight })
  }

  removeBackend(backend: VclBackendRef | undefined): void {
    this.#members = this.#members.filter((m) => m.backend !== backend)
  }

  healthy(): boolean {
    return this.#members.some((m) => m.backend.healthy())
  }

  /** `x.backend()`: the director itself, resolved when the fetch starts, as in varnish. */
  backend(key?: string): VclBackendRef {
    if (this.kind === 'hash') return this.#byHash(key ?? '')
    return this
  }

  resolve(ctx: VclContext): VclResolvedBackend | undefined {
    const m = this.#members
    if (m.length === 0) return undefined
    switch (this.kind) {
      case 'round_robin':
        for (let i = 0; i < m.length; i++) {
          const pickIndex = (this.#next + i) % m.length
          const r = (m[pickIndex] as Member).backend.resolve(ctx)
          if (r) {
            this.#next = pickIndex + 1
            return r
          }
        }
        return undefined
      case 'fallback':
        for (const x of m) {
          const r = x.backend.resolve(ctx)
          if (r) return r
        }
        return undefined
      case 'random':
        return this.#weighted(ctx, Math.random())
      case 'hash':
        return this.#weighted(ctx, this.#keyOf ? pointFor(this.#keyOf(ctx)) : 0)
    }
  }

  // Weighted choice among healthy members at fraction `at` of the total weight.
  #weighted(ctx: VclContext, at: number): VclResolvedBackend | undefined {
    const healthy = this.#members.filter((m) => m.weight > 0 && m.backend.healthy())
    const total = healthy.reduce((s, m) => s + m.weight, 0)
    let point = at * total
    for (const x of healthy) {
      point -= x.weight
      if (point < 0) return x.backend.resolve(ctx)
    }
    return healthy.at(-1)?.backend.resolve(ctx)
  }

  // varnish's hash director hashes the key with SHA256 and picks by weight among healthy members.
  #byHash(key: string): VclBackendRef {
    const at = pointFor(key)
    return {
      name: this.name,
      healthy: () => this.healthy(),
      resolve: (ctx) => this.#weighted(ctx, at),
    }
  }
}

/** Where a key falls in [0, 1): the first 32 bits of its SHA-256, as varnish's hash director. */
function pointFor(key: string): number {
  return createHash('sha256').update(key).digest().readUInt32BE(0) / 0x1_0000_0000
}
