import { Transform } from 'node:stream'
import { getHeader } from '@edgestack/common'
import { parseHttpTime } from './http-date.js'
import { parseRange } from './ranges.js'
import type { RequestState } from './request-state.js'

/** One byte range of an answer: [start, end). */
export interface Slice {
  start: number
  end: number
}

/**
 * ngx_http_range_header_filter on a cached answer (r->cached: any number of ranges) or a
 * cacheable miss (u->cacheable: r->single_range). nginx allows ranges there when the backend
 * sent Accept-Ranges (ngx_http_upstream_copy_allow_ranges, which then does not copy the field)
 * and the length is known (not after gzip); it answers one range with 206 and Content-Range,
 * otherwise adds its own `Accept-Ranges: bytes` after every other field. `headers` is the
 * client's list, changed in place. Returns the slice to send, 416, or undefined (whole body).
 * Several ranges on a hit (nginx's multipart/byteranges) are answered whole (README).
 */
export function cacheRange(st: RequestState, status: number, headers: string[], fields: readonly string[]): Slice | 416 | undefined {
  if (getHeader(fields, 'accept-ranges') === undefined) return undefined
  let length: number | undefined
  for (let i = 0; i < headers.length; i += 2) {
    const lower = (headers[i] as string).toLowerCase()
    if (lower === 'accept-ranges') {
      headers.splice(i, 2)
      i -= 2
    } else if (lower === 'content-length') length = Number(headers[i + 1])
  }
  if (status !== 200 || length === undefined) return undefined
  const range = st.req.header('range')
  const accept = () => {
    headers.push('Accept-Ranges', 'bytes')
    return undefined
  }
  if (range === undefined || !ifRangeHolds(st.req.header('if-range'), fields)) return accept()
  const parsed = parseRange(range, length)
  if (parsed === 'unsatisfiable') return 416
  if (parsed === undefined || parsed.length !== 1) return accept()
  const r = parsed[0] as Slice
  for (let i = 0; i < headers.length; i += 2) if ((headers[i] as string).toLowerCase() === 'content-length') headers[i + 1] = String(r.end - r.start)
  headers.push('Content-Range', `bytes ${r.start}-${r.end - 1}/${length}`)
  return r
}

/** If-Range: a quoted value is compared with the ETag, anything else with Last-Modified. */
function ifRangeHolds(ifRange: string | undefined, fields: readonly string[]): boolean {
  if (ifRange === undefined) return true
  if (ifRange.length >= 2 && ifRange.endsWith('"')) return getHeader(fields, 'etag') === ifRange
  const lm = getHeader(fields, 'last-modified')
  const mtime = lm === undefined ? -1 : parseHttpTime(lm)
  return mtime !== -1 && parseHttpTime(ifRange) === mtime
}

/** The bytes of `slice` out of a body streamed through (ngx_http_range_singlepart_body). */
export function sliceStream(slice: Slice): Transform {
  let at = 0
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      const from = Math.max(slice.start - at, 0)
      const to = Math.min(slice.end - at, chunk.length)
      at += chunk.length
      done(null, to > from ? chunk.subarray(from, to) : undefined)
    },
  })
}
