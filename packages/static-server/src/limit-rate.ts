import type { Pace } from '@edgestack/common'
import { parseSizeT } from './config/directive-values.js'
import type { RequestState } from './request-state.js'
import { expand, type Template } from './variables.js'

/**
 * The rate an answer is sent at, decided as nginx 1.22's write filter decides it on its first
 * call: `$limit_rate` set by `set` or a backend's X-Accel-Limit-Rate (r->limit_rate_set) wins,
 * else the `limit_rate` of the location the answer comes from; `limit_rate_after` is read only
 * when there is a rate. A value from a variable that is not a size is logged and means no limit
 * (ngx_http_complex_value_size with its default 0).
 */
export function pacingOf(st: RequestState): Pace | undefined {
  const c = st.conf
  st.limitRate ??= sizeOf(st, c.limitRate)
  if (st.limitRate === 0) return undefined
  return { rate: st.limitRate, after: sizeOf(st, c.limitRateAfter), startMs: st.start }
}

/** `set $limit_rate V` (ngx_http_variable_request_set_size): an invalid size is logged and changes nothing. */
export function setLimitRate(st: RequestState, value: string): void {
  const n = parseSizeT(value)
  if (n === undefined) st.logError(`invalid size "${value}"`)
  else st.limitRate = n
}

function sizeOf(st: RequestState, v: number | Template): number {
  if (typeof v === 'number') return v
  const text = expand(v, st)
  const n = parseSizeT(text)
  if (n !== undefined) return n
  st.logError(`invalid size "${text}"`)
  return 0
}
