import type { MetricFamily, MetricSample } from './prometheus-text.js'

/**
 * The upper bounds, in seconds, of every edgestack latency histogram: client_golang's
 * DefBuckets (5 ms to 10 s), which most dashboards' latency panels and SLO rules assume, with
 * 1 ms and 2.5 ms added below them because a cache hit or a static file takes less than 5 ms.
 * The same buckets everywhere, so that the histograms of the three layers can be compared
 * (and subtracted) in one query. `+Inf` is implied.
 */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])

/**
 * A Prometheus histogram (cumulative buckets, `_sum`, `_count`), kept per process: observing
 * is one short scan of the bounds and two additions, cheap enough for every request. A
 * manager sums its children's as it sums their counters (sumFamilies adds bucket by bucket).
 */
export class Histogram {
  readonly #bounds: readonly number[]
  readonly #counts: number[]
  #sum = 0
  #count = 0

  constructor(bounds: readonly number[] = LATENCY_BUCKETS) {
    this.#bounds = bounds
    this.#counts = new Array<number>(bounds.length + 1).fill(0)
  }

  observe(seconds: number): void {
    let i = 0
    while (i < this.#bounds.length && seconds > (this.#bounds[i] as number)) i++
    this.#counts[i] = (this.#counts[i] as number) + 1
    this.#sum += seconds
    this.#count++
  }

  get count(): number {
    return this.#count
  }

  family(name: string, help: string): MetricFamily {
    const samples: MetricSample[] = []
    let cumulative = 0
    for (const [i, bound] of this.#bounds.entries()) {
      cumulative += this.#counts[i] as number
      samples.push({ suffix: '_bucket', labels: { le: String(bound) }, value: cumulative })
    }
    samples.push({ suffix: '_bucket', labels: { le: '+Inf' }, value: this.#count })
    samples.push({ suffix: '_sum', value: this.#sum })
    samples.push({ suffix: '_count', value: this.#count })
    return { name, type: 'histogram', help, samples }
  }
}

/** Histograms by the value of one label (the router's handling: hit, miss, pass, pipe, synth). */
export class HistogramByLabel {
  readonly #label: string
  readonly #byValue = new Map<string, Histogram>()

  constructor(label: string) {
    this.#label = label
  }

  observe(value: string, seconds: number): void {
    let h = this.#byValue.get(value)
    if (!h) {
      h = new Histogram()
      this.#byValue.set(value, h)
    }
    h.observe(seconds)
  }

  family(name: string, help: string): MetricFamily {
    const samples: MetricSample[] = []
    for (const [value, h] of this.#byValue) {
      for (const s of h.family(name, help).samples) samples.push({ ...s, labels: { [this.#label]: value, ...s.labels } })
    }
    return { name, type: 'histogram', help, samples }
  }
}
