/**
 * When to start a child again after it died. The first death after a healthy run restarts at
 * once (varnishd's manager restarts a killed child in about 0.2 s); each further death within
 * `stableMs` of its start doubles the wait, up to `maxMs`, so a child that crashes as it starts
 * never turns into a tight loop of forks. A child that served `stableMs` resets the count.
 */
export class RestartBackoff {
  readonly #firstMs: number
  readonly #maxMs: number
  readonly #stableMs: number
  #streak = 0

  constructor(opts: { firstMs?: number; maxMs?: number; stableMs?: number } = {}) {
    this.#firstMs = opts.firstMs ?? 250
    this.#maxMs = opts.maxMs ?? 30_000
    this.#stableMs = opts.stableMs ?? 10_000
  }

  /** The wait before the next start, for a child that lived `livedMs`. */
  next(livedMs: number): number {
    if (livedMs >= this.#stableMs) this.#streak = 0
    this.#streak++
    if (this.#streak === 1) return 0
    return Math.min(this.#firstMs * 2 ** (this.#streak - 2), this.#maxMs)
  }

  /** Deaths in a row, each soon after its start (1 after a healthy run). */
  get streak(): number {
    return this.#streak
  }
}
