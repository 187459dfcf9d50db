/**
 * varnishd's rapid-reset limit (cache_http2_proto.c h2_rapid_reset, VSV00013 / CVE-2023-44487):
 * a RST_STREAM that comes within h2_rapid_reset of its stream's HEADERS spends one from a
 * budget of h2_rapid_reset_limit that refills at limit per h2_rapid_reset_period; with none
 * left the session ends in GOAWAY ENHANCE_YOUR_CALM. A limit of 0 turns it off.
 */
export class RapidResetBudget {
  readonly #thresholdMs: number
  readonly #limit: number
  readonly #periodMs: number
  #budget: number
  #last = 0

  constructor(thresholdSeconds: number, limit: number, periodSeconds: number) {
    this.#thresholdMs = thresholdSeconds * 1000
    this.#limit = limit
    this.#periodMs = periodSeconds * 1000
    this.#budget = limit
  }

  /** False when this reset is one too many: the session must end. */
  allow(streamStartMs: number, nowMs: number): boolean {
    if (this.#limit === 0 || nowMs - streamStartMs > this.#thresholdMs) return true
    if (this.#last !== 0) this.#budget = Math.min(this.#limit, this.#budget + (this.#limit * (nowMs - this.#last)) / this.#periodMs)
    this.#last = nowMs
    if (this.#budget < 1) return false
    this.#budget -= 1
    return true
  }
}
