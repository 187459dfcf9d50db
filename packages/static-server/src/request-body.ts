import type { RequestState } from './request-state.js'

/**
 * What a proxied body may take in memory when client_max_body_size is 0 (unlimited): nginx
 * would spool it to client_body_temp_path; we answer 413 past this (DIFFERENCES.md).
 */
const MEMORY_CAP = 64 * 1024 * 1024

/**
 * The client's body read whole before the backend is contacted, as nginx's
 * ngx_http_read_client_request_body with proxy_request_buffering on: a chunked body is then
 * sent with its length, and a body can be sent again to the next peer. undefined when the
 * request has no body; a status when it cannot be read (413 past client_max_body_size).
 */
export async function readRequestBody(st: RequestState): Promise<Buffer | undefined | number> {
  const req = st.req
  if (!req.hasBody) return req.contentLength === 0 ? Buffer.alloc(0) : undefined
  // nginx answers Expect before reading (ngx_http_test_expect), body or not.
  if (req.version === '1.1' && req.header('expect')?.toLowerCase() === '100-continue') st.res.writeContinue()
  const limit = st.conf.clientMaxBodySize > 0 ? st.conf.clientMaxBodySize : MEMORY_CAP
  const chunks: Buffer[] = []
  let seen = 0
  try {
    for await (const c of req.body) {
      seen += (c as Buffer).length
      if (seen > limit) {
        // "client intended to send too large chunked body": the rest is not read.
        req.keepAlive = false
        return 413
      }
      chunks.push(c as Buffer)
    }
  } catch {
    req.keepAlive = false
    return 400
  }
  return Buffer.concat(chunks)
}
