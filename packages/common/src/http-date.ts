/**
 * HTTP-date (RFC 9110 §5.6.7), read strictly and always in UTC. `Date.parse` is not an
 * HTTP-date parser: it reads the asctime form in the host's local time zone and takes
 * `... UTC`, missing commas, doubled spaces or one-digit hours as valid dates, so a response
 * that must count as expired (RFC 9111 §5.3) would be served from cache.
 *
 *   IMF-fixdate  = day-name "," SP 2DIGIT SP month SP 4DIGIT SP time-of-day SP "GMT"
 *   rfc850-date  = day-name-l "," SP 2DIGIT "-" month "-" 2DIGIT SP time-of-day SP "GMT"
 *   asctime-date = day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time-of-day SP 4DIGIT
 *
 * Names are case-sensitive (§5.6.7: "HTTP-date is case sensitive"). As varnishd's VTIM_parse,
 * the day name must be the right one for the date and a leap second reads as :59; unlike it,
 * nothing may surround the date (§5.6.7 has no optional whitespace inside a field value).
 */

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
const LONG_DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const FIFTY_YEARS_MS = 50 * 365.2425 * 86_400_000

/**
 * Milliseconds since the epoch for a valid HTTP-date, undefined for anything else.
 * `nowMs` places a two-digit rfc850 year (the 50-year rule of §5.6.7).
 */
export function parseHttpDate(value: string, nowMs: number = Date.now()): number | undefined {
  const comma = value.indexOf(',')
  if (comma === -1) return asctime(value)
  const name = value.slice(0, comma)
  if (comma === 3) return imfFixdate(value, DAYS.indexOf(name))
  return rfc850(value, comma, LONG_DAYS.indexOf(name), nowMs)
}

// "Sun, 06 Nov 1994 08:49:37 GMT"
function imfFixdate(v: string, weekday: number): number | undefined {
  if (weekday === -1 || v.length !== 29 || v[4] !== ' ' || v[7] !== ' ' || v[11] !== ' ') return undefined
  if (v[16] !== ' ' || v.slice(25) !== ' GMT') return undefined
  return build(digits(v, 12, 4), month(v, 8), digits(v, 5, 2), clock(v, 17), weekday)
}

// "Sunday, 06-Nov-94 08:49:37 GMT"
function rfc850(v: string, comma: number, weekday: number, nowMs: number): number | undefined {
  const p = comma + 1
  if (weekday === -1 || v.length !== p + 23 || v[p] !== ' ' || v[p + 3] !== '-' || v[p + 7] !== '-') return undefined
  if (v[p + 10] !== ' ' || v.slice(p + 19) !== ' GMT') return undefined
  const yy = digits(v, p + 8, 2)
  if (yy === -1) return undefined
  // §5.6.7: a two-digit year that appears more than 50 years in the future is the most recent
  // past year with the same last two digits: the latest candidate at most 50 years ahead.
  const nowYear = new Date(nowMs).getUTCFullYear()
  const day = digits(v, p + 1, 2)
  const m = month(v, p + 4)
  const t = clock(v, p + 11)
  let year = nowYear - (nowYear % 100) + yy + 100
  let ms = build(year, m, day, t, -1)
  while (ms !== undefined && ms - nowMs > FIFTY_YEARS_MS) {
    year -= 100
    ms = build(year, m, day, t, -1)
  }
  if (ms === undefined) return undefined
  return new Date(ms).getUTCDay() === weekday ? ms : undefined
}

// "Sun Nov  6 08:49:37 1994"
function asctime(v: string): number | undefined {
  if (v.length !== 24 || v[3] !== ' ' || v[7] !== ' ' || v[10] !== ' ' || v[19] !== ' ') return undefined
  const weekday = DAYS.indexOf(v.slice(0, 3))
  if (weekday === -1) return undefined
  const day = v[8] === ' ' ? digits(v, 9, 1) : digits(v, 8, 2)
  // One digit after the space: " 6" is day 6, " 0" is not a day; "06" is the 2DIGIT form.
  return build(digits(v, 20, 4), month(v, 4), day, clock(v, 11), weekday)
}

/** Seconds of the day for "HH:MM:SS" at `p`; -1 when malformed. */
function clock(v: string, p: number): number {
  if (v[p + 2] !== ':' || v[p + 5] !== ':') return -1
  const h = digits(v, p, 2)
  const m = digits(v, p + 3, 2)
  const s = digits(v, p + 6, 2)
  if (h === -1 || m === -1 || s === -1 || h > 23 || m > 59 || s > 60) return -1
  // A leap second (:60, which RFC 5322 allows) reads as :59, as varnishd's VTIM_parse does.
  return h * 3600 + m * 60 + Math.min(s, 59)
}

function month(v: string, p: number): number {
  return MONTHS.indexOf(v.slice(p, p + 3))
}

/** The value of `n` ASCII digits at `p`; -1 unless all are digits. */
function digits(v: string, p: number, n: number): number {
  let out = 0
  for (let i = p; i < p + n; i++) {
    const c = v.charCodeAt(i)
    if (c < 48 || c > 57) return -1
    out = out * 10 + c - 48
  }
  return out
}

function build(year: number, m: number, day: number, seconds: number, weekday: number): number | undefined {
  if (year < 0 || m < 0 || day < 1 || seconds < 0) return undefined
  // setUTCFullYear, not Date.UTC, which reads years 0-99 as 1900-1999.
  const d = new Date(0)
  d.setUTCFullYear(year, m, day)
  // 31 Feb rolls into March: the day must survive the round trip.
  if (d.getUTCDate() !== day || d.getUTCMonth() !== m) return undefined
  if (weekday !== -1 && d.getUTCDay() !== weekday) return undefined
  return d.getTime() + seconds * 1000
}
