import type { PassThrough } from 'node:stream'
import { accelRedirect } from './accel-redirect.js'
import { conditional } from './cache-conditional.js'
import { backgroundUpdate } from './cache-background.js'
import { endRun, entryFor, fillTap, finishFill, revalidated, staleFor } from './cache-fill.js'
import { cacheLookup, sendCached } from './cache-lookup.js'
import type { CacheZone } from './proxy-cache.js'
import { type ClientHead, clientHead } from './proxy-response.js'
import { type UpstreamRequest, upstreamRequest } from './proxy-request.js'
import { readRequestBody } from './request-body.js'
import { startUpstreamAnswer, upstreamAnswer } from './upstream-answer.js'
import type { RequestState, UpstreamTry } from './request-state.js'
import type { Lease, Upstream } from './upstream.js'
import { relayBody } from './upstream-body.js'
import { type Answer, exchange, type TryFailure, type TryTimes } from './upstream-exchange.js'
import { upgrade } from './upstream-tunnel.js'

/**
 * What the content phase does next: done, a status for error_page / the built-in page, or
 * `restart` for an internal redirect (X-Accel-Redirect, proxy_intercept_errors' error_page).
 */
export type ProxyResult = undefined | number | 'restart'

/** ngx_http_upstream_next_errors: the statuses proxy_next_upstream can name. */
const NEXT_STATUSES = new Set([500, 502, 503, 504, 403, 404, 429])
const NON_IDEMPOTENT = new Set(['POST', 'LOCK', 'PATCH'])

/**
 * proxy_pass: the client's body read whole (proxy_request_buffering on), the request written
 * as nginx writes it, tries over the upstream's peers by proxy_next_upstream's rules, then the
 * answer relayed as nginx relays it: the backend's status line and field names, nginx's
 * layout, proxy_redirect, hidden fields, X-Accel-*, and proxy_intercept_errors.
 */
export async function proxy(st: RequestState, up: Upstream, caches?: ReadonlyMap<string, CacheZone>): Promise<ProxyResult> {
  const conf = st.conf
  const pp = conf.proxyPass
  if (!pp) return 502
  st.proxyHost = pp.host
  st.proxyPort = pp.host.includes(':') ? (pp.host.slice(pp.host.lastIndexOf(':') + 1) as string) : '80'
  const body = await readRequestBody(st)
  if (typeof body === 'number') return body
  st.cacheRun = undefined
  const zoneName = conf.proxyCache.zone
  const zone = zoneName === undefined ? undefined : caches?.get(zoneName)
  if (zone !== undefined && conf.proxyCache.methods.has(st.method)) {
    const found = await cacheLookup(st, zone)
    if (found !== 'fetch') {
      if (found.background && st.cacheRun !== undefined) void backgroundUpdate(st, up, upstreamRequest(st, body), limits(st), st.cacheRun)
      return found.answered
    }
  }
  try {
    return await fetch(st, up, body)
  } finally {
    if (st.cacheRun !== undefined) endRun(st.cacheRun)
  }
}

async function fetch(st: RequestState, up: Upstream, body: Buffer | undefined): Promise<ProxyResult> {
  const conf = st.conf
  const ureq = upstreamRequest(st, body)
  // An Upgrade goes on only when the config sets the field (proxy_set_header Upgrade ...).
  const upgrading = st.req.upgrade && conf.proxyHttpVersion === '1.1' && ureq.upgrade !== ''
  const tries: UpstreamTry[] = []
  st.upstreamTries.push(tries)
  // "client prematurely closed connection": a client's FIN ends the upstream request (nginx's
  // ngx_http_upstream_check_broken_connection, proxy_ignore_client_abort off).
  const left = new AbortController()
  const onClientEnd = () => left.abort()
  st.res.once('clientend', onClientEnd)
  try {
    return await tryPeers(st, up, ureq, tries, upgrading, left.signal)
  } finally {
    st.res.off('clientend', onClientEnd)
  }
}

async function tryPeers(st: RequestState, up: Upstream, ureq: UpstreamRequest, tries: UpstreamTry[], upgrading: boolean, signal: AbortSignal): Promise<ProxyResult> {
  const conf = st.conf
  const next = conf.proxyNextUpstream
  const started = Date.now()
  let remaining = Math.min(up.peerCount, conf.proxyNextUpstreamTries || Number.POSITIVE_INFINITY)
  // The method reads what it hashes ($remote_addr after realip, the hash key) once a request.
  const choice = up.begin(st)
  for (;;) {
    const peer = up.pick(choice)
    if (!peer) {
      // "no live upstreams": the upstream's name stands in for an address.
      tries.push({ addr: up.name, status: '502', start: Date.now() })
      return 502
    }
    const times: TryTimes = { start: Date.now() }
    const t: UpstreamTry = { addr: peer.address, status: '', start: times.start, times }
    tries.push(t)
    const r = await exchange(up, peer, ureq, limits(st), times, signal)
    if (signal.aborted) {
      // nginx logs 499 and closes: nothing is written to a client that left.
      if (typeof r !== 'string') r.lease.socket.destroy()
      t.status = '499'
      t.end = Date.now()
      st.res.destroy()
      return undefined
    }
    if (times.connected !== undefined) t.sent = ureq.head.length + (ureq.body?.length ?? 0)
    remaining--
    const timedOut = conf.proxyNextUpstreamTimeoutMs > 0 && Date.now() - started >= conf.proxyNextUpstreamTimeoutMs
    const sent = typeof r !== 'string' || times.connected !== undefined
    const idempotentOk = !(sent && NON_IDEMPOTENT.has(ureq.method)) || next.has('non_idempotent')
    let ch: ClientHead | 'invalid' | undefined
    let failure: TryFailure | undefined = typeof r === 'string' ? r : undefined
    if (typeof r !== 'string') {
      ch = clientHead(st, r.head)
      if (ch === 'invalid') {
        r.lease.socket.destroy()
        failure = 'invalid_header'
      }
    }
    if (failure !== undefined) {
      t.status = failure === 'timeout' ? '504' : '502'
      t.end = Date.now()
      up.settle(choice, peer, true)
      if (remaining <= 0 || !next.has(failure) || !idempotentOk || timedOut) {
        const stale = staleFor(st.cacheRun, failure)
        if (stale !== undefined) return sendCached(st, stale)
        return failure === 'timeout' ? 504 : 502
      }
      continue
    }
    const answer = r as Answer
    const head = ch as ClientHead
    t.status = String(head.status)
    // What was read so far: the head and whatever body came with it.
    t.bytes = answer.head.size + answer.rest.length
    st.upstreamFields = answer.head.fields
    if (NEXT_STATUSES.has(head.status) && next.has(`http_${head.status}`) && remaining > 0 && idempotentOk && !timedOut) {
      t.end = Date.now()
      answer.lease.socket.destroy()
      // ngx_http_upstream_next: 403 and 404 are NGX_PEER_NEXT, not a failure of the peer.
      up.settle(choice, peer, head.status !== 403 && head.status !== 404)
      continue
    }
    const run = st.cacheRun
    if (run !== undefined && head.status >= 300) {
      // ngx_http_upstream_test_next: an error status the expired entry may stand in for, or a
      // 304 that revalidates it.
      const kept = (NEXT_STATUSES.has(head.status) ? staleFor(run, `http_${head.status}`) : undefined) ?? revalidated(st, run, answer.head)
      if (kept !== undefined) {
        t.end = Date.now()
        answer.lease.socket.destroy()
        up.settle(choice, peer, false)
        return sendCached(st, kept)
      }
    }
    up.settle(choice, peer, false)
    if (head.status === 101) {
      // "upstream sent 101 without upgrade request" is an invalid header in nginx too.
      if (!upgrading) {
        answer.lease.socket.destroy()
        t.status = '502'
        return 502
      }
      upgrade(st, answer, head)
      return undefined
    }
    return deliver(st, up, answer, head, t)
  }
}

function limits(st: RequestState) {
  const c = st.conf
  return { connectMs: c.proxyConnectTimeoutMs, readMs: c.proxyReadTimeoutMs, sendMs: c.proxySendTimeoutMs, headMax: c.proxyBufferSize }
}

/** The answer goes to the client, or turns into an internal redirect or an error page. */
async function deliver(st: RequestState, up: Upstream, answer: Answer, head: ClientHead, t: UpstreamTry): Promise<ProxyResult> {
  const lease = answer.lease
  const redirect = head.accel.redirect
  if (redirect !== undefined) {
    finishTry(t, up, lease, false, 0)
    return accelRedirect(st, answer.head.fields, redirect)
  }
  // ngx_http_upstream_intercept_errors: an error_page for a status >= 300 takes over (the
  // backend's body is dropped); a 401's WWW-Authenticate is kept for the page.
  if (st.conf.proxyInterceptErrors && head.status >= 300 && st.conf.errorPages.some((e) => e.codes.includes(head.status))) {
    finishTry(t, up, lease, false, 0)
    if (head.status === 401) {
      const f = answer.head.fields
      for (let i = 0; i < f.length; i += 2) if ((f[i] as string).toLowerCase() === 'www-authenticate') st.carried.push(f[i] as string, f[i + 1] as string)
    }
    return head.status
  }
  const res = st.res
  const run = st.cacheRun
  const entry = run === undefined ? undefined : entryFor(st, run, answer.head)
  const cond = run?.answersConditionals ? conditional(st, head.status, answer.head.fields) : undefined
  if (cond === 412) {
    finishTry(t, up, lease, false, 0)
    return 412
  }
  const a = upstreamAnswer(st, head, answer.head.fields, cond, run?.answersConditionals === true)
  if (a === 416) {
    finishTry(t, up, lease, false, 0)
    return 416
  }
  // The same once the answer is under way.
  let relay: PassThrough | undefined
  const onClientEnd = () => relay?.destroy()
  res.once('clientend', onClientEnd)
  const outcome = await relayBody(lease.socket, answer.rest, head.framing, st.conf.proxyReadTimeoutMs, (out: PassThrough) => {
    relay = out
    startUpstreamAnswer(st, a, out)
  }, run === undefined || entry === undefined ? undefined : fillTap(run, entry))
  res.off('clientend', onClientEnd)
  if (run !== undefined) finishFill(run, entry, outcome.complete)
  finishTry(t, up, lease, outcome.complete && head.reusable, outcome.bytes - answer.rest.length)
  t.bodyBytes = outcome.bytes
  // The backend broke off mid-body: nginx closes the client connection too.
  if (!outcome.complete) res.destroy()
  return undefined
}

function finishTry(t: UpstreamTry, up: Upstream, lease: Lease, reusable: boolean, bodyBytes: number): void {
  t.end = Date.now()
  t.bytes = (t.bytes ?? 0) + bodyBytes
  t.bodyBytes = bodyBytes
  up.release(lease, reusable)
}
