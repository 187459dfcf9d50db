import type { RequestState } from './request-state.js'

/**
 * The connection settings a location decides. ngx_http_update_location_config's keep-alive rules, applied whenever a configuration is
 * chosen for the request: `keepalive_timeout 0`, the keepalive_requests-th request and a
 * connection older than keepalive_time close after this answer (Connection: close). Once
 * off, it stays off through internal redirects, as r->keepalive does.
 */
export function keepAliveLimits(st: RequestState): void {
  const c = st.conf
  // client_body_timeout and send_timeout are the location's too (ngx_http_core_loc_conf_t).
  st.req.bodyTimeoutMs = c.clientBodyTimeoutMs
  st.req.sendTimeoutMs = c.sendTimeoutMs
  if (c.keepaliveOff || st.req.connectionRequests >= c.keepaliveRequests || st.start - st.req.connectionStartMs > c.keepaliveTimeMs) {
    st.req.keepAlive = false
  }
}
