import type { VclResolvedBackend } from './context.js'

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
  #admin: 'auto' | 'healthy' | 'sick' = 'auto'
  /**
   * Seconds since the epoch the health last changed, from creation on (VRT_new_backend sets
   * it): the shard director's rampup counts from it.
   */
  #changed = Date.now() / 1000

  constructor(o: BackendOptions & { readonly none?: boolean }) {
    Object.assign(this, o)
    if (o.probe) this.#healthy = o.probe.initial >= o.probe.threshold
    if (o.none) this.#healthy = false
  }

  get changed(): number {
    return this.#changed
  }

  /** `backend.set_health`: an operator's word over the probe's (varnishd's admin health). */
  get admin(): 'auto' | 'healthy' | 'sick' {
    return this.#admin
  }

  set admin(state: 'auto' | 'healthy' | 'sick') {
    const was = this.healthy()
    this.#admin = state
    if (this.healthy() !== was) this.#changed = Date.now() / 1000
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
    const was = this.healthy()
    this.#healthy = healthy
    if (this.healthy() !== was) this.#changed = Date.now() / 1000
  }

  resolve(): VclResolvedBackend | undefined {
    return this.healthy() ? this : undefined
  }
}

