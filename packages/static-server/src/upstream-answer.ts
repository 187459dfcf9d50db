import type { PassThrough, Readable } from 'node:stream'
import type { ZlibOptions } from 'node:zlib'
import { declaredLength, type HeadLayout } from '@edgestack/common'
import { withoutBodyFields } from './cache-conditional.js'
import { cacheRange, type Slice, sliceStream } from './cache-range.js'
import { gzipHeaders, gzipStream } from './gzip-filter.js'
import type { ClientHead } from './proxy-response.js'
import type { RequestState } from './request-state.js'
import { baseHeaders, finishHeaders, nginxLayout } from './respond.js'
import { ssiApplies, ssiHeaders, ssiStream } from './ssi-filter.js'

/** How a backend's answer, fresh or stored, goes to the client. */
export interface UpstreamAnswer {
  status: number
  front: string[]
  layout: HeadLayout
  ssi: boolean
  gzip: ZlibOptions | undefined
  slice: Slice | undefined
}

/**
 * The header filters over a backend's head, the same for a relayed answer and for one from
 * proxy_cache (ngx_http_upstream_send_response and ngx_http_upstream_cache_send both run the
 * whole filter chain): X-Accel-Charset / X-Accel-Limit-Rate, the location's header processing,
 * SSI, gzip, and one range from a cacheable answer (`rangeable`). `cond` is the 304 a
 * cacheable answer gives a conditional request. 416 when the range cannot be served.
 */
export function upstreamAnswer(st: RequestState, head: ClientHead, fields: readonly string[], cond: 304 | undefined, rangeable: boolean): UpstreamAnswer | 416 {
  const status = cond ?? st.errorStatus ?? head.status
  st.accelCharset = head.accel.charset
  st.typeFromUpstream = true
  // ngx_http_upstream_process_limit_rate: the backend's rate is the answer's r->limit_rate.
  if (head.accel.limitRate !== undefined) st.limitRate = head.accel.limitRate
  let headers = finishHeaders(st, status, [...baseHeaders(st.conf.proxyPassHeaders), ...head.front, ...head.list])
  if (cond === 304) headers = withoutBodyFields(headers)
  const ssi = cond === undefined && ssiApplies(st, headers, declaredLength(headers))
  if (ssi) ssiHeaders(st, headers)
  const gzip = cond === 304 ? undefined : gzipHeaders(st, status, headers, ssi ? undefined : declaredLength(headers), true)
  // A cacheable answer takes one range (u->cacheable: allow_ranges with single_range).
  const slice = rangeable && cond === undefined && gzip === undefined && !ssi ? cacheRange(st, status, headers, fields) : undefined
  if (slice === 416) return 416
  const [front, layout] = nginxLayout(st, headers)
  layout.afterLength = head.afterLength
  if (st.errorStatus === undefined && cond === undefined && slice === undefined) layout.statusText = head.statusText
  return { status: slice === undefined ? status : 206, front, layout, ssi, gzip, slice }
}

/** The head written and the body filters (SSI, one range, gzip) put between `out` and the client. */
export function startUpstreamAnswer(st: RequestState, a: UpstreamAnswer, out: PassThrough): void {
  st.res.writeHead(a.status, a.front, undefined, a.layout)
  let body: Readable = a.ssi ? ssiStream(st, out) : a.slice !== undefined ? out.pipe(sliceStream(a.slice)) : out
  if (a.gzip) body = gzipStream(st, body, a.gzip)
  st.res.pipeFrom(body).catch(() => st.res.destroy())
}
