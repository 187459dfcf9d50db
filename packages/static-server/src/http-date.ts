const MDAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/**
 * nginx's ngx_parse_http_time, kept to its letter because clients can tell the difference:
 * the weekday is skipped unread, month names are case-sensitive and told apart by one or two
 * letters, anything after the time (the zone, IE's `; length=N`) is ignored. Seconds since
 * the epoch, or -1 (NGX_ERROR) where nginx gives up: If-Modified-Since then never matches
 * and If-Unmodified-Since always fails (412), as in nginx.
 */
export function parseHttpTime(value: string): number {
  const end = value.length
  const at = (i: number) => value.charCodeAt(i)
  const digit = (i: number) => {
    const c = at(i)
    return c >= 48 && c <= 57 ? c - 48 : -1
  }
  const two = (i: number) => {
    const a = digit(i)
    const b = digit(i + 1)
    return a < 0 || b < 0 ? -1 : a * 10 + b
  }
  let fmt: 'rfc822' | 'rfc850' | 'isoc' | undefined
  let p = 0
  for (; p < end; p++) {
    if (value[p] === ',') break
    if (value[p] === ' ') {
      fmt = 'isoc'
      break
    }
  }
  for (p++; p < end; p++) if (value[p] !== ' ') break
  if (end - p < 18) return -1

  let day = 32
  let year = 2038
  if (fmt !== 'isoc') {
    day = two(p)
    if (day < 0) return -1
    p += 2
    if (value[p] === ' ') {
      if (end - p < 18) return -1
      fmt = 'rfc822'
    } else if (value[p] === '-') fmt = 'rfc850'
    else return -1
    p++
  }

  let month: number
  switch (value[p]) {
    case 'J':
      month = value[p + 1] === 'a' ? 0 : value[p + 2] === 'n' ? 5 : 6
      break
    case 'F':
      month = 1
      break
    case 'M':
      month = value[p + 2] === 'r' ? 2 : 4
      break
    case 'A':
      month = value[p + 1] === 'p' ? 3 : 7
      break
    case 'S':
      month = 8
      break
    case 'O':
      month = 9
      break
    case 'N':
      month = 10
      break
    case 'D':
      month = 11
      break
    default:
      return -1
  }
  p += 3
  if ((fmt === 'rfc822' && value[p] !== ' ') || (fmt === 'rfc850' && value[p] !== '-')) return -1
  p++

  if (fmt === 'rfc822') {
    const hi = two(p)
    const lo = two(p + 2)
    if (hi < 0 || lo < 0) return -1
    year = hi * 100 + lo
    p += 4
  } else if (fmt === 'rfc850') {
    year = two(p)
    if (year < 0) return -1
    year += year < 70 ? 2000 : 1900
    p += 2
  }

  if (fmt === 'isoc') {
    if (value[p] === ' ') p++
    day = digit(p++)
    if (day < 0) return -1
    if (value[p] !== ' ') {
      const d = digit(p++)
      if (d < 0) return -1
      day = day * 10 + d
    }
    if (end - p < 14) return -1
  }

  if (value[p++] !== ' ') return -1
  const hour = two(p)
  p += 2
  if (hour < 0 || value[p++] !== ':') return -1
  const min = two(p)
  p += 2
  if (min < 0 || value[p++] !== ':') return -1
  const sec = two(p)
  if (sec < 0) return -1

  if (fmt === 'isoc') {
    p += 2
    if (value[p++] !== ' ') return -1
    const hi = two(p)
    const lo = two(p + 2)
    if (hi < 0 || lo < 0) return -1
    year = hi * 100 + lo
  }

  if (hour > 23 || min > 59 || sec > 59) return -1
  if (day === 29 && month === 1) {
    if (year & 3 || (year % 100 === 0 && year % 400 !== 0)) return -1
  } else if (day > (MDAYS[month] as number)) return -1

  // Gauss' formula for days since the epoch, with the year starting on March 1 (as nginx).
  let m = month
  let y = year
  if (--m <= 0) {
    m += 12
    y -= 1
  }
  const days = 365 * y + Math.floor(y / 4) - Math.floor(y / 100) + Math.floor(y / 400) + Math.floor((367 * m) / 12) - 30 + day - 1 - 719527 + 31 + 28
  return days * 86400 + hour * 3600 + min * 60 + sec
}
