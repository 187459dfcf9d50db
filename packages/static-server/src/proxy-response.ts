import { regexExec } from './regex-match.js'
import { absoluteLocation } from './respond.js'
import type { RequestState } from './request-state.js'
import type { Framing } from './upstream-body.js'
import type { UpstreamHead } from './upstream-head.js'
import { captured } from './user-variables.js'
import { expand } from './variables.js'

/** ngx_http_proxy_hide_headers: never passed unless proxy_pass_header names them. */
const HIDDEN = ['date', 'server', 'x-pad', 'x-accel-expires', 'x-accel-redirect', 'x-accel-limit-rate', 'x-accel-buffering', 'x-accel-charset']
/** Fields the upstream module consumes itself (ngx_http_upstream_headers_in without copy). */
const CONSUMED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'content-type'])
const DIGITS = /^\d{1,15}$/
// RFC 9110 §5.1: what a client could read as a field name. nginx passes `X@Bad: 1` on; we drop it.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** What the client's head is made of, in nginx's layout, and what the backend asked of us. */
export interface ClientHead {
  status: number
  statusText: string
  /** Content-Type and Content-Length: nginx writes them first, in its own spelling. */
  front: string[]
  /** A Location made absolute: written after Content-Length. */
  afterLength: string[]
  /** The rest, in the backend's order and spelling. */
  list: string[]
  framing: Framing
  /** The backend's connection may carry another request after this body. */
  reusable: boolean
  /** limitRate: bytes per second from X-Accel-Limit-Rate (ngx_http_upstream_process_limit_rate). */
  accel: { redirect?: string; charset?: string; buffering?: string; limitRate?: number }
}

/**
 * ngx_http_upstream_process_headers and ngx_http_proxy_process_header on a parsed head. Framing
 * is checked as nginx 1.23+ does, stricter than 1.22 (DIFFERENCES.md): a Transfer-Encoding
 * other than one `chunked`, a Transfer-Encoding with a Content-Length, or a Content-Length
 * that is not one number is an invalid header (502), since two hops could read such a body
 * differently. Repeated Content-Type: the last wins, as nginx.
 */
export function clientHead(st: RequestState, head: UpstreamHead): ClientHead | 'invalid' {
  const conf = st.conf
  const hide = new Set([...HIDDEN, ...conf.proxyHideHeaders])
  for (const p of conf.proxyPassHeaders) hide.delete(p)
  const ignored = conf.proxyIgnoreHeaders
  let contentType: string | undefined
  let length: number | undefined
  let te: string | undefined
  let teCount = 0
  let close = head.version < 1001
  const list: string[] = []
  const accel: ClientHead['accel'] = {}
  let location = -1
  const f = head.fields
  for (let i = 0; i < f.length; i += 2) {
    const name = f[i] as string
    let value = f[i + 1] as string
    const lower = name.toLowerCase()
    switch (lower) {
      case 'content-type':
        contentType = value
        continue
      case 'content-length': {
        const v = value.trim()
        if (!DIGITS.test(v) || (length !== undefined && length !== Number(v))) return 'invalid'
        length = Number(v)
        continue
      }
      case 'transfer-encoding':
        te = value
        teCount++
        continue
      case 'connection':
        if (/(?:^|,)\s*close\s*(?:,|$)/i.test(value)) close = true
        continue
      case 'x-accel-redirect':
        if (!ignored.has(lower)) accel.redirect = value
        break
      case 'x-accel-charset':
        if (!ignored.has(lower)) accel.charset = value
        break
      case 'x-accel-buffering':
        if (!ignored.has(lower)) accel.buffering = value
        break
      case 'x-accel-limit-rate':
        if (!ignored.has(lower) && DIGITS.test(value)) accel.limitRate = Number(value)
        break
      case 'location': {
        const rewritten = rewriteRedirect(st, value, 0)
        if (rewritten !== undefined) {
          value = rewritten
          location = list.length
        }
        break
      }
      case 'refresh': {
        const at = value.toLowerCase().indexOf('url=')
        if (at >= 0) value = rewriteRedirect(st, value, at + 4) ?? value
        break
      }
    }
    if (CONSUMED.has(lower) || hide.has(lower) || !TOKEN.test(name)) continue
    list.push(name, value)
  }
  if (teCount > 1 || (te !== undefined && (te.trim().toLowerCase() !== 'chunked' || length !== undefined))) return 'invalid'
  const front: string[] = []
  if (contentType !== undefined) front.push('Content-Type', contentType)
  // A HEAD fetched as GET for the cache (proxy_cache_convert_head) has a body to read and store.
  const noBody = (st.method === 'HEAD' && !st.cacheRun?.convertHead) || head.status === 204 || head.status === 304
  let framing: Framing
  if (noBody) framing = { kind: 'none' }
  else if (te !== undefined) framing = { kind: 'chunked' }
  else if (length !== undefined) framing = { kind: 'length', length }
  else framing = { kind: 'close' }
  if (length !== undefined && te === undefined && head.status !== 204 && head.status !== 304) front.push('Content-Length', String(length))
  // ngx_http_header_filter makes the last rewritten Location absolute, in its own place.
  const afterLength: string[] = []
  if (location >= 0) {
    const v = list[location + 1] as string
    if (v.startsWith('/') && conf.absoluteRedirect) {
      afterLength.push('Location', absoluteLocation(st, v))
      list.splice(location, 2)
    }
  }
  return {
    status: head.status,
    statusText: head.statusText,
    front,
    afterLength,
    list,
    framing,
    reusable: !close && framing.kind !== 'close',
    accel,
  }
}

/**
 * ngx_http_proxy_rewrite_redirect over the value from `prefix` on (0 for Location, after
 * `url=` for Refresh): the first rule that matches wins; a plain pattern (variables expanded)
 * must match the start exactly, case included; a regex replaces the whole rest.
 */
export function rewriteRedirect(st: RequestState, value: string, prefix: number): string | undefined {
  const rules = st.conf.proxyRedirect
  if (!rules) return undefined
  const rest = value.slice(prefix)
  for (const r of rules) {
    if (r.regex) {
      const m = regexExec(r.regex, rest)
      if (!m) continue
      captured(st, m)
      return value.slice(0, prefix) + expand(r.replacement, st)
    }
    const pattern = expand(r.pattern ?? [], st)
    if (!rest.startsWith(pattern)) continue
    return value.slice(0, prefix) + expand(r.replacement, st) + rest.slice(pattern.length)
  }
  return undefined
}
