const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/**
 * The Common Log Format timestamp nginx (`$time_local`) and varnishncsa (`%t`) write:
 * `25/Nov/2026:09:30:00 +0000`, in the server's local time zone.
 */
export function clfDate(d: Date): string {
  const offset = -d.getTimezoneOffset()
  const sign = offset >= 0 ? '+' : '-'
  const abs = Math.abs(offset)
  const p2 = (n: number) => String(n).padStart(2, '0')
  return `${p2(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(
    d.getSeconds(),
  )} ${sign}${p2(Math.trunc(abs / 60))}${p2(abs % 60)}`
}

/**
 * `format(now)` of the current second, computed once a second rather than once a request (as
 * nginx and varnishd keep a cached time): the hot paths write a timestamp on every response.
 */
function perSecond(format: (d: Date) => string): () => string {
  let second = Number.NaN
  let text = ''
  return () => {
    const ms = Date.now()
    const s = Math.floor(ms / 1000)
    if (s !== second) {
      second = s
      text = format(new Date(s * 1000))
    }
    return text
  }
}

/** clfDate of now (`$time_local`, varnishncsa's `%t`). */
export const clfNow = perSecond(clfDate)

/** An HTTP-date of now (RFC 9110 §5.6.7), for Date fields. */
export const httpDateNow = perSecond((d) => d.toUTCString())
