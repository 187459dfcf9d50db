import { httpDateNow } from '@edgestack/common'
import { addHeaderApplies, closesConnection, errorPageBody, hasPage, SERVER, statusLineReason } from './error-page.js'
import type { RequestState } from './request-state.js'
import { expand } from './variables.js'

export function baseHeaders(): string[] {
  return ['Server', SERVER, 'Date', httpDateNow()]
}

/** add_header (only on success and redirect statuses unless `always`) and expires, as nginx's headers filter. */
export function finishHeaders(st: RequestState, status: number, headers: string[]): string[] {
  const c = st.conf
  const applies = addHeaderApplies(status)
  if (c.expires !== undefined && applies && status !== 204) {
    const e = c.expires
    if (e === 'epoch') headers.push('Expires', 'Thu, 01 Jan 1970 00:00:01 GMT', 'Cache-Control', 'no-cache')
    else if (e === 'max') headers.push('Expires', 'Thu, 31 Dec 2037 23:55:55 GMT', 'Cache-Control', 'max-age=315360000')
    else {
      headers.push('Expires', new Date(Date.now() + e * 1000).toUTCString())
      headers.push('Cache-Control', e < 0 ? 'no-cache' : `max-age=${e}`)
    }
  }
  for (const h of c.addHeaders) {
    if (!h.always && !applies) continue
    const v = expand(h.value, st)
    if (v !== '') headers.push(h.name, v)
  }
  return headers
}

/** nginx's built-in page for `status` (no error_page involved). */
export function sendBuiltin(st: RequestState, status: number, extra: string[] = []): void {
  const res = st.res
  if (closesConnection(status)) st.req.keepAlive = false
  if (!hasPage(status)) {
    res.send(status, finishHeaders(st, status, [...baseHeaders(), ...extra]), undefined, statusLineReason(status))
    return
  }
  const headers = [...baseHeaders(), 'Content-Type', 'text/html', ...extra]
  finishHeaders(st, status, headers)
  const wire = status === 494 ? 400 : status
  res.send(wire, headers, errorPageBody(status, st.conf.serverTokens), statusLineReason(wire))
}

/**
 * A redirect as nginx writes it: relative Locations are made absolute with the Host the
 * client sent (server_name_in_redirect off) and the port when it is not 80 (port_in_redirect).
 */
export function sendRedirect(st: RequestState, status: number, location: string): void {
  let loc = location
  if (loc.startsWith('/') && st.conf.absoluteRedirect) {
    const port = st.req.localPort
    // ngx_http_header_filter: the server's name when server_name_in_redirect is on, else the
    // client's Host, else (HTTP/1.0 without Host) the address the connection came in on.
    // A server without server_name gives "" there, as nginx writes `http://:PORT/`.
    const host = st.conf.serverNameInRedirect ? st.server.primaryName : st.host || st.req.localAddress
    loc = `http://${host}${st.conf.portInRedirect && port !== 80 ? `:${port}` : ''}${loc}`
  }
  sendBuiltin(st, status, ['Location', loc])
}
