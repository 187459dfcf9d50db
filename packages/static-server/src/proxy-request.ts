import type { RequestState } from './request-state.js'
import { escapeUri } from './uri.js'
import { expand, type Template } from './variables.js'

/**
 * ngx_http_proxy_headers: the fields nginx sets for every proxied request unless
 * proxy_set_header names them. An empty value leaves the field out, so TE, Keep-Alive, Expect
 * and Upgrade from the client never reach the backend unless the config sets them.
 */
const DEFAULTS: readonly [string, Template][] = [
  ['Host', [{ v: 'proxy_host' }]],
  ['Connection', ['close']],
  ['Content-Length', [{ v: 'proxy_internal_body_length' }]],
  ['Transfer-Encoding', []],
  ['TE', []],
  ['Keep-Alive', []],
  ['Expect', []],
  ['Upgrade', []],
]

/**
 * ngx_http_proxy_cache_headers: with proxy_cache, the defaults also drop the client's
 * conditional and range fields (the cache answers those) and send the stored validators of
 * an entry being revalidated (proxy_cache_revalidate).
 */
const CACHE_DEFAULTS: readonly [string, Template][] = [
  ...DEFAULTS,
  ['If-Modified-Since', [{ v: 'upstream_cache_last_modified' }]],
  ['If-Unmodified-Since', []],
  ['If-None-Match', [{ v: 'upstream_cache_etag' }]],
  ['If-Match', []],
  ['Range', []],
  ['If-Range', []],
]

export interface UpstreamRequest {
  /** Request line and header section, CRLF-terminated. */
  head: Buffer
  body: Buffer | undefined
  method: string
  /** The Upgrade value the config sets (a websocket tunnel), '' when none. */
  upgrade: string
}

/**
 * ngx_http_proxy_create_request: the request line (proxy_method or the request's, the URI by
 * proxy_pass's rules, HTTP/1.0 unless proxy_http_version), then proxy_set_header's fields in
 * the order written followed by the defaults it did not name, then the client's fields as the
 * client wrote them (unless proxy_pass_request_headers off), minus every name set above.
 * The body was read whole first, as nginx does with proxy_request_buffering on, so it goes
 * out with a Content-Length.
 */
export function upstreamRequest(st: RequestState, body: Buffer | undefined): UpstreamRequest {
  const conf = st.conf
  // proxy_cache_convert_head: a cached HEAD is fetched with GET, so that the body can be stored.
  const method = conf.proxyMethod ? expand(conf.proxyMethod, st) : st.cacheRun?.convertHead ? 'GET' : st.method
  let sendBody = conf.proxyPassRequestBody ? body : undefined
  // $proxy_internal_body_length is the length of the body read, passed or not (nginx sends it
  // even with proxy_pass_request_body off), or of proxy_set_body's.
  let length = body === undefined ? '' : String(body.length)
  if (conf.proxySetBody) {
    sendBody = Buffer.from(expand(conf.proxySetBody, st), 'latin1')
    length = String(sendBody.length)
  }
  st.internalBodyLength = length
  let head = `${method} ${upstreamPath(st)} HTTP/${conf.proxyHttpVersion}\r\n`
  const named = new Set<string>()
  let upgrade = ''
  const emit = (name: string, value: Template) => {
    const lower = name.toLowerCase()
    if (named.has(lower)) return
    named.add(lower)
    const v = expand(value, st)
    if (lower === 'upgrade') upgrade = v
    if (v !== '') head += `${name}: ${v}\r\n`
  }
  for (const h of conf.proxySetHeaders) emit(h.name, h.value)
  for (const [name, value] of st.cacheRun ? CACHE_DEFAULTS : DEFAULTS) emit(name, value)
  if (conf.proxyPassRequestHeaders) {
    const raw = st.req.headers
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string
      if (!named.has(name.toLowerCase())) head += `${name}: ${raw[i + 1]}\r\n`
    }
  }
  head += '\r\n'
  return { head: Buffer.from(head, 'latin1'), body: sendBody, method, upgrade }
}

/** proxy_pass's URI rules: the location's prefix replaced by the URI part, or the URI as received. */
export function upstreamPath(st: RequestState): string {
  const pp = st.conf.proxyPass
  const args = st.args ? `?${st.args}` : ''
  if (pp?.uri === undefined || st.rewriteBreak) {
    const t = st.req.target
    // The target as received while neither the URI nor the arguments changed (r->valid_unparsed_uri).
    if (!st.uriChanged && t.startsWith('/')) {
      const q = t.indexOf('?')
      if ((q < 0 ? '' : t.slice(q + 1)) === st.args) return t
    }
    return escapeUri(st.uri) + args
  }
  return pp.uri + escapeUri(st.uri.slice(pp.locationPrefix.length)) + args
}
