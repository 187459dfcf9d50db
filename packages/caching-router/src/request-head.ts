import { type Http1Request, type Http1Response, removeHeader } from '@edgestack/common'
import type { Counters } from './counters.js'

/**
 * What varnishd does to a request head before vcl_recv (cache_http1_proto.c's http1_dissect,
 * cache_req_fsm.c's cnt_recv), and the URL helpers RFC 9111's invalidation needs.
 */

/**
 * varnishd appends client.ip to X-Forwarded-For before vcl_recv (one field, comma-joined).
 * The same pass finds the first Expect field (varnishd reads only the first), so the usual
 * request costs no second scan; undefined when there is none.
 */
export function appendForwardedFor(headers: string[], ip: string): string | undefined {
  let expect: string | undefined
  let forwarded = -1
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    if (name.length === 15 && forwarded === -1 && name.toLowerCase() === 'x-forwarded-for') forwarded = i + 1
    else if (name.length === 6 && expect === undefined && name.toLowerCase() === 'expect') expect = headers[i + 1] as string
  }
  if (forwarded === -1) headers.push('X-Forwarded-For', ip)
  else headers[forwarded] = `${headers[forwarded]}, ${ip}`
  return expect
}

/**
 * varnishd's http1_dissect, before vcl_recv: an expectation other than `100-continue` gets a
 * bare 417 and the connection closed (RFC 9110 §10.1.1 lets a server refuse one it does not
 * support); `100-continue` is answered with `100 Continue` on HTTP/1.1 whatever the method,
 * unless more bytes (the body) came with the head, and the field is removed so neither VCL
 * nor a backend sees it. False when refused.
 */
export function expectContinue(expect: string, req: Http1Request, res: Http1Response, counters: Counters): boolean {
  if (expect.toLowerCase() !== '100-continue') {
    counters.client_req_417++
    req.keepAlive = false
    res.send(417, [], undefined, 'Expectation Failed')
    return false
  }
  const headers = req.headers
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    const name = headers[i] as string
    if (name.length === 6 && name.toLowerCase() === 'expect') headers.splice(i, 2)
  }
  if (req.version === '1.1' && !req.followedByBytes) req.socket.write('HTTP/1.1 100 Continue\r\n\r\n')
  return true
}

/**
 * A request-target that is not origin-form, as varnishd's http1_dissect takes it: absolute-form
 * `http://authority/path` (scheme in any case) becomes `/path`, its authority the only Host
 * (RFC 9112 §3.2.2); one without a path is kept whole. `*` (OPTIONS) is kept. Undefined for
 * anything else (`GET a`), which no backend request can carry.
 */
export function targetUrl(target: string, headers: string[]): string | undefined {
  if (target === '*') return target
  const scheme = target.slice(0, 8).toLowerCase()
  if (scheme.startsWith('https://')) return target
  if (!scheme.startsWith('http://')) return undefined
  const slash = target.indexOf('/', 7)
  if (slash === -1) return target
  removeHeader(headers, 'host')
  headers.push('Host', target.slice(7, slash))
  return target.slice(slash)
}

/** A path when `target` is relative or names `host` over http; undefined for another origin. */
export function sameOriginPath(target: string, host: string | undefined): string | undefined {
  if (target.startsWith('/') && !target.startsWith('//')) return target
  try {
    const u = new URL(target)
    if (u.protocol === 'http:' && host !== undefined && u.host === host.toLowerCase()) return u.pathname + u.search
  } catch {
    return undefined
  }
  return undefined
}
