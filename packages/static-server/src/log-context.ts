import type { RequestState } from './request-state.js'

/** The tail nginx's ngx_http_log_error adds to a request's error line. */
export function logContext(st: RequestState): string {
  const r = st.req
  return `, client: ${st.remoteAddr}, server: ${st.server.primaryName}, request: "${r.method} ${r.target} HTTP/${r.version}", host: "${st.host}"`
}
