/**
 * RFC 9111 §1.2.2: delta-seconds = 1*DIGIT, a non-negative integer; a value beyond what the
 * cache can represent is taken as 2^31. Anything else (a sign, a decimal point, `0.0`,
 * `1.5`, an exponent, hex) is not delta-seconds: NaN, and each caller applies its section's
 * rule for an invalid value (§4.2.1 stale for max-age/s-maxage, §5.1 ignore for Age).
 * varnishd 7.1 takes `max-age=1.5` as 1 s and `Age: 30.5` as 30 s (README, "Where we differ").
 */
export function deltaSeconds(text: string): number {
  if (text.length === 0) return Number.NaN
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 48 || c > 57) return Number.NaN
  }
  return Math.min(Number(text), DELTA_MAX)
}

const DELTA_MAX = 2 ** 31
