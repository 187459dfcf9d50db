import type { Socket } from 'node:net'
import type { RequestState } from './request-state.js'

/** nginx's c->requests and c->start_time, kept beside the socket for as long as it lives. */
const connections = new WeakMap<Socket, { requests: number; startMs: number }>()

/** Counts one more request on `socket` (ngx_http_alloc_request's c->requests++). */
export function countRequest(socket: Socket, now: number): { requests: number; startMs: number } {
  let c = connections.get(socket)
  if (c === undefined) {
    c = { requests: 0, startMs: now }
    connections.set(socket, c)
  }
  c.requests++
  return c
}

/**
 * ngx_http_update_location_config's keep-alive rules, applied whenever a configuration is
 * chosen for the request: `keepalive_timeout 0`, the keepalive_requests-th request and a
 * connection older than keepalive_time close after this answer (Connection: close). Once
 * off, it stays off through internal redirects, as r->keepalive does.
 */
export function keepAliveLimits(st: RequestState): void {
  const c = st.conf
  if (c.keepaliveOff || st.connection.requests >= c.keepaliveRequests || st.start - st.connection.startMs > c.keepaliveTimeMs) {
    st.req.keepAlive = false
  }
}
