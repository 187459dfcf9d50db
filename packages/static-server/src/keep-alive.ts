import type { RequestState } from './request-state.js'

/**
 * The connection settings a location decides. ngx_http_update_location_config's keep-alive rules, applied whenever a configuration is
 * chosen for the request: `keepalive_timeout 0`, the keepalive_requests-th request and a
 * connection older than keepalive_time close after this answer (Connection: close). Once
 * off, it stays off through internal redirects, as r->keepalive does. `found`: false for the
 * server's configuration before the location phase.
 */
export function keepAliveLimits(st: RequestState, found = true): void {
  // A subrequest's location does not decide for the client's connection.
  if (st.isSubrequest) return
  const c = st.conf
  // client_body_timeout and send_timeout are the location's too (ngx_http_core_loc_conf_t).
  st.req.bodyTimeoutMs = c.clientBodyTimeoutMs
  st.req.sendTimeoutMs = c.sendTimeoutMs
  st.res.keepAliveField = c.keepAliveField
  if (c.keepaliveOff || st.req.connectionRequests >= c.keepaliveRequests || st.start - st.req.connectionStartMs > c.keepaliveTimeMs) {
    st.req.keepAlive = false
    return
  }
  // keepalive_disable: MSIE 4 to 6 may wait on a kept-alive connection after a POST; old Safari
  // too. Decided where nginx decides it: once the location's configuration is found.
  const kd = c.keepaliveDisable
  if (!found || (!kd.msie6 && !kd.safari)) return
  const ua = userAgent(st.req.header('user-agent'))
  if ((ua.msie6 && st.method === 'POST' && kd.msie6) || (ua.safari && kd.safari)) st.req.keepAlive = false
}

/**
 * ngx_http_process_user_agent's flags: `MSIE 4.`/`MSIE 5.`, or `MSIE 6.` without `SV1`
 * (msie6); Safari when neither MSIE nor Opera, nor Gecko nor Chrome, and both `Safari/` and
 * `Mac OS X` are in the field.
 */
export function userAgent(ua: string | undefined): { msie6: boolean; safari: boolean } {
  if (ua === undefined) return { msie6: false, safari: false }
  const at = ua.indexOf('MSIE ')
  let msie = false
  let msie6 = false
  if (at >= 0 && at + 7 < ua.length) {
    msie = true
    if (ua[at + 6] === '.') {
      const v = ua[at + 5]
      msie6 = v === '4' || v === '5' || (v === '6' && !ua.includes('SV1', at + 8))
    }
  }
  const opera = ua.includes('Opera')
  if (opera) msie6 = false
  const safari = !msie && !opera && !ua.includes('Gecko/') && !ua.includes('Chrome/') && ua.includes('Safari/') && ua.includes('Mac OS X')
  return { msie6, safari }
}
