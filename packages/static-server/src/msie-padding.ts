import type { RequestState } from './request-state.js'

/** ngx_http_msie_padding: six comment lines after a built-in 4xx/5xx page. */
const PADDING = Buffer.from('<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n'.repeat(6))

/**
 * `msie_padding on` (nginx's default): a built-in error page for MSIE or Chrome gets 512 bytes
 * more, so those browsers show it rather than their own "friendly" page. The user agent is read
 * as ngx_http_process_user_agent reads it: `MSIE ` with more after it and no `Opera`, or, for
 * a browser that is none of those, `Chrome/` when `Gecko/` is absent.
 */
export function withPadding(st: RequestState, status: number, body: Buffer): Buffer {
  if (!st.conf.msiePadding || status < 400) return body
  const ua = st.req.header('user-agent')
  if (ua === undefined) return body
  const msie = ua.indexOf('MSIE ')
  const isMsie = msie !== -1 && msie + 7 < ua.length && !ua.includes('Opera')
  const isChrome = !isMsie && !ua.includes('Opera') && !ua.includes('Gecko/') && ua.includes('Chrome/')
  return isMsie || isChrome ? Buffer.concat([body, PADDING]) : body
}
