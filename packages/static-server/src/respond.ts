import { Readable } from 'node:stream'
import { gzip, type ZlibOptions } from 'node:zlib'
import { type HeadLayout, httpDateNow } from '@edgestack/common'
import type { ExpiresValue, LocationConf } from './config/model.js'
import { parseExpires } from './config/directive-values.js'
import { charsetFilter } from './charset-filter.js'
import { addHeaderApplies, closesConnection, errorPageBody, hasPage, SERVER, statusLineReason } from './error-page.js'
import { addGzipVary, gzipHeaders, gzipRatio, gzipStream } from './gzip-filter.js'
import { chunksOf, ssiApplies, ssiHeaders, ssiStream, ssiWhole } from './ssi-filter.js'
import { withPadding } from './msie-padding.js'
import type { RequestState } from './request-state.js'
import { expand } from './variables.js'

/** Server and Date, unless proxy_pass_header lets a backend's own through (`passed`, lower-cased). */
export function baseHeaders(passed?: readonly string[]): string[] {
  if (!passed || passed.length === 0) return ['Server', SERVER, 'Date', httpDateNow()]
  const out: string[] = []
  if (!passed.includes('server')) out.push('Server', SERVER)
  if (!passed.includes('date')) out.push('Date', httpDateNow())
  return out
}

/** add_header (only on success and redirect statuses unless `always`) and expires, as nginx's headers filter. */
export function finishHeaders(st: RequestState, status: number, headers: string[]): string[] {
  const c = st.conf
  const applies = addHeaderApplies(status)
  if (st.carriedType !== undefined) {
    for (let i = 0; i < headers.length; i += 2) if ((headers[i] as string).toLowerCase() === 'content-type') headers[i + 1] = st.carriedType
  }
  const e = c.expires !== undefined && applies && status !== 204 ? expiresOf(st, c.expires) : undefined
  if (e !== undefined) {
    let expires: string
    let cacheControl: string
    if (e === 'epoch') [expires, cacheControl] = ['Thu, 01 Jan 1970 00:00:01 GMT', 'no-cache']
    else if (e === 'max') [expires, cacheControl] = ['Thu, 31 Dec 2037 23:55:55 GMT', 'max-age=315360000']
    else if (typeof e === 'number') [expires, cacheControl] = [new Date(Date.now() + e * 1000).toUTCString(), e < 0 ? 'no-cache' : `max-age=${e}`]
    else if ('daily' in e) {
      // ngx_next_time: that time of day in the server's zone, today if still ahead, else tomorrow.
      const now = Math.floor(Date.now() / 1000)
      const next = new Date(now * 1000)
      next.setHours(Math.floor(e.daily / 3600), Math.floor((e.daily % 3600) / 60), e.daily % 60, 0)
      if (next.getTime() / 1000 - now <= 0) next.setDate(next.getDate() + 1)
      const at = next.getTime() / 1000
      expires = next.toUTCString()
      cacheControl = at - now < 0 ? 'no-cache' : `max-age=${at - now}`
    } else {
      // ngx_http_set_expires: from the file's mtime (now for an answer without one); an
      // Expires already past says no-cache.
      const now = Math.floor(Date.now() / 1000)
      const at = (st.lastModifiedSec ?? now) + e.modified
      const maxAge = at - now
      expires = new Date(at * 1000).toUTCString()
      cacheControl = e.modified < 0 || maxAge < 0 ? 'no-cache' : `max-age=${maxAge}`
    }
    setExpires(headers, expires, cacheControl)
  }
  charsetFilter(st, status, headers)
  // What an X-Accel-Redirect's answer carried over comes before add_header's (nginx's list order).
  if (st.carried.length > 0) headers.push(...st.carried)
  for (const h of c.addHeaders) {
    if (!h.always && !applies) continue
    const v = expand(h.value, st)
    if (v !== '') headers.push(h.name, v)
  }
  if (st.gzipVary) addGzipVary(st, headers)
  expectTrailers(st, applies)
  return headers
}

/**
 * add_trailer (ngx_http_headers_filter sets r->expect_trailers when one applies to the status,
 * the trailers filter reads the values as the last buffer passes): the answer is chunked for an
 * HTTP/1.1 client and the fields with a non-empty value go in its last chunk.
 */
function expectTrailers(st: RequestState, applies: boolean): void {
  const list = st.conf.addTrailers
  if (list.length === 0 || !list.some((t) => t.always || applies)) {
    st.res.trailers = undefined
    return
  }
  st.res.trailers = () => {
    const out: string[] = []
    for (const t of list) {
      if (!t.always && !applies) continue
      const v = expand(t.value, st)
      if (v !== '') out.push(t.name, v)
    }
    return out
  }
}

/**
 * A whole body through the gzip filter: compressed and chunked when the filter takes it,
 * else as `res.send` writes it. `ordered` lays the head out in nginx's field order;
 * `streamed` is for answers nginx sends without a length (autoindex): chunked either way.
 */
export function sendWhole(
  st: RequestState,
  status: number,
  headers: string[],
  body: Buffer | string | undefined,
  reason?: string,
  { ordered = false, streamed = false } = {},
): void {
  const res = st.res
  const buf = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body) : body
  if (ssiApplies(st, headers, streamed ? undefined : (buf?.length ?? 0))) {
    sendSsi(st, status, headers, buf, reason, ordered)
    return
  }
  const options = gzipHeaders(st, status, headers, streamed ? undefined : (buf?.length ?? 0))
  const [front, layout] = ordered ? nginxLayout(st, headers) : [headers, undefined]
  if (options === undefined && !streamed) {
    res.send(status, front, buf, reason, layout)
    return
  }
  writeBody(st, status, front, buf, options, reason, layout)
}

/** A whole body through the SSI filter (then gzip): chunked, its head as ssiHeaders leaves it. */
function sendSsi(st: RequestState, status: number, headers: string[], buf: Buffer | undefined, reason: string | undefined, ordered: boolean): void {
  const res = st.res
  ssiHeaders(st, headers)
  const options = gzipHeaders(st, status, headers, undefined)
  const [front, layout] = ordered ? nginxLayout(st, headers) : [headers, undefined]
  res.writeHead(status, front, reason, layout)
  // A HEAD answer is its head: nginx's body filters never run for it.
  if (buf === undefined || st.req.method === 'HEAD') {
    res.end()
    return
  }
  if (options === undefined) {
    ssiWhole(st, buf).catch(() => res.destroy())
    return
  }
  res.pipeFrom(gzipStream(st, ssiStream(st, Readable.from(chunksOf(buf))), options)).catch(() => res.destroy())
}

/**
 * A body with no length in its head (chunked, or closed for HTTP/1.0): compressed with
 * `options`, as gzipHeaders decided, or as it is.
 */
export function writeBody(st: RequestState, status: number, headers: string[], buf: Buffer | undefined, options: ZlibOptions | undefined, reason?: string, layout?: HeadLayout): void {
  const res = st.res
  res.writeHead(status, headers, reason, layout)
  if (options === undefined || buf === undefined || st.req.method === 'HEAD') {
    res.end(buf)
    return
  }
  gzip(buf, options, (err, out) => {
    if (err) return res.destroy()
    st.gzipRatio = gzipRatio(buf.length, out.length)
    res.end(out)
  })
}

/**
 * ngx_http_set_expires: a value with variables is read for this answer; one that is `off` or
 * not a valid value (nginx logs nothing) leaves the answer without Expires and Cache-Control.
 */
function expiresOf(st: RequestState, e: NonNullable<LocationConf['expires']>): ExpiresValue | undefined {
  if (typeof e !== 'object' || !('value' in e)) return e
  const v = parseExpires(expand(e.value, st), e.modified)
  return v === 'off' || (typeof v === 'object' && 'error' in v) ? undefined : v
}

/**
 * ngx_http_set_expires: an Expires already there (a backend's) takes the new value where it
 * stands, so does the first Cache-Control, and further Cache-Control fields go.
 */
function setExpires(headers: string[], expires: string, cacheControl: string): void {
  let e = false
  let cc = false
  for (let i = 0; i < headers.length; i += 2) {
    const lower = (headers[i] as string).toLowerCase()
    if (lower === 'expires' && !e) {
      headers[i + 1] = expires
      e = true
    } else if (lower === 'cache-control') {
      if (cc) {
        headers.splice(i, 2)
        i -= 2
      } else headers[i + 1] = cacheControl
      cc = true
    }
  }
  if (!e) headers.push('Expires', expires)
  if (!cc) headers.push('Cache-Control', cacheControl)
}

/**
 * nginx's built-in page for `status` (no error_page involved). `headersStatus` is the status
 * add_header and expires saw, when a later filter changed it (the range filter's 416 comes
 * after the headers filter ran on a 200).
 */
export function sendBuiltin(st: RequestState, status: number, extra: string[] = [], headersStatus = status): void {
  const res = st.res
  if (closesConnection(status)) st.req.keepAlive = false
  if (!hasPage(status)) {
    const [front, layout] = nginxLayout(st, finishHeaders(st, headersStatus, [...baseHeaders(), ...extra]))
    res.send(status, front, undefined, statusLineReason(status), layout)
    return
  }
  const headers = [...baseHeaders(), 'Content-Type', 'text/html', ...extra]
  finishHeaders(st, headersStatus, headers)
  const wire = status === 494 ? 400 : status
  sendWhole(st, wire, headers, withPadding(st, status, errorPageBody(status, st.conf.serverTokens)), statusLineReason(wire), { ordered: true })
}

/**
 * ngx_http_header_filter's order: Server, Date, Content-Type, then (after Content-Length) a
 * Location made absolute, then Connection, then the rest of the list in the order it was
 * built. The Location a redirect set (st.location) is added here.
 */
export function nginxLayout(st: RequestState, headers: readonly string[]): [string[], HeadLayout] {
  const front: string[] = []
  const trailing: string[] = []
  const afterLength: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    const lower = name.toLowerCase()
    if (lower === 'server' || lower === 'date' || lower === 'content-type' || lower === 'content-length') front.push(name, headers[i + 1] as string)
    else trailing.push(name, headers[i + 1] as string)
  }
  const loc = st.location
  if (loc !== undefined) {
    const abs = absoluteLocation(st, loc)
    if (abs !== loc) afterLength.push('Location', abs)
    else trailing.unshift('Location', loc)
  }
  return [front, { afterLength, trailing }]
}

/**
 * A redirect as nginx writes it: relative Locations are made absolute with the Host the
 * client sent (server_name_in_redirect off) and the port when it is not 80 (port_in_redirect).
 */
export function sendRedirect(st: RequestState, status: number, location: string): void {
  st.location = location
  sendBuiltin(st, status)
}

/**
 * ngx_http_header_filter's absolute Location: a relative one gets the client's Host (or the
 * server's name with server_name_in_redirect, or the address the connection came in on) and
 * the port when it is not 80 (port_in_redirect); absolute_redirect off leaves it as it is.
 */
export function absoluteLocation(st: RequestState, location: string): string {
  if (!location.startsWith('/') || !st.conf.absoluteRedirect) return location
  const port = st.conn.localPort
  // A server without server_name gives "" there, as nginx writes `http://:PORT/`.
  const host = st.conf.serverNameInRedirect ? st.server.primaryName : st.host || st.conn.localAddress
  return `http://${host}${st.conf.portInRedirect && port !== 80 ? `:${port}` : ''}${location}`
}
