import type { RequestState } from './request-state.js'

/**
 * ngx_http_update_location_config's keep-alive rules, applied whenever a configuration is
 * chosen for the request: `keepalive_timeout 0`, the keepalive_requests-th request and a
 * connection older than keepalive_time close after this answer (Connection: close). Once
 * off, it stays off through internal redirects, as r->keepalive does.
 */
export function keepAliveLimits(st: RequestState): void {
  const c = st.conf
  if (c.keepaliveOff || st.req.connectionRequests >= c.keepaliveRequests || st.start - st.req.connectionStartMs > c.keepaliveTimeMs) {
    st.req.keepAlive = false
  }
}
