import type { ProxyResult } from './proxy.js'
import type { RequestState } from './request-state.js'
import { unsafeUri } from './unsafe-uri.js'

/** Fields an X-Accel-Redirect carries to the answer it redirects to (the `redirect` flag of ngx_http_upstream_headers_in). */
const CARRIED = new Set(['content-type', 'set-cookie', 'content-disposition', 'cache-control', 'expires', 'accept-ranges'])

/**
 * X-Accel-Redirect (ngx_http_upstream_process_headers): the backend's answer is dropped except
 * the fields nginx carries over; `@name` continues in a named location, a URI (split at `?`)
 * is an internal redirect with GET (HEAD stays HEAD). A URI nginx's unsafe check refuses is
 * a 404.
 */
export function accelRedirect(st: RequestState, f: readonly string[], target: string): ProxyResult {
  for (let i = 0; i < f.length; i += 2) {
    const lower = (f[i] as string).toLowerCase()
    // The type is the answer's own (ngx_http_set_content_type keeps one already set).
    if (lower === 'content-type') st.carriedType = f[i + 1] as string
    else if (CARRIED.has(lower)) st.carried.push(f[i] as string, f[i + 1] as string)
  }
  if (target.startsWith('@')) {
    const loc = st.server.named.get(target.slice(1))
    if (!loc) return 500
    st.pendingNamed = loc
    return 'restart'
  }
  // ngx_http_parse_unsafe_uri, as for an SSI include; nginx's internal redirect then wants a path.
  const safe = unsafeUri(target)
  if (safe === undefined || !safe.path.startsWith('/')) return 404
  if (st.method !== 'HEAD') st.method = 'GET'
  st.uri = safe.path
  st.args = safe.args
  st.uriChanged = true
  st.redirected = true
  return 'restart'
}
