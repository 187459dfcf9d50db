import { endRun, entryFor, fillTap, finishFill, revalidated } from './cache-fill.js'
import type { CacheRun } from './proxy-cache.js'
import type { UpstreamRequest } from './proxy-request.js'
import { clientHead } from './proxy-response.js'
import type { RequestState } from './request-state.js'
import type { Upstream } from './upstream.js'
import { relayBody } from './upstream-body.js'
import { type ExchangeLimits, exchange } from './upstream-exchange.js'

/**
 * proxy_cache_background_update (ngx_http_upstream_cache_background_update): the client had
 * the stale entry (STALE); this fetch, which no client waits for, updates it: stored when the
 * answer may be, renewed by a 304 with proxy_cache_revalidate. Until it is over, other
 * requests find the entry updating. One try at the peer the balancer gives (README).
 */
export async function backgroundUpdate(st: RequestState, up: Upstream, ureq: UpstreamRequest, limits: ExchangeLimits, run: CacheRun): Promise<void> {
  // The fetch's own decisions: the client's request keeps STALE as its $upstream_cache_status.
  const bg: CacheRun = { ...run, status: 'EXPIRED' }
  try {
    const choice = up.begin(st)
    const peer = up.pick(choice)
    if (peer === undefined) return
    const r = await exchange(up, peer, ureq, limits, { start: Date.now() }, new AbortController().signal)
    if (typeof r === 'string') {
      up.settle(choice, peer, true)
      return
    }
    up.settle(choice, peer, false)
    const ch = clientHead(st, r.head)
    if (ch === 'invalid' || revalidated(st, bg, r.head) !== undefined) {
      r.lease.socket.destroy()
      return
    }
    const entry = entryFor(st, bg, r.head)
    if (entry === undefined) {
      r.lease.socket.destroy()
      return
    }
    const outcome = await relayBody(r.lease.socket, r.rest, ch.framing, limits.readMs, (out) => out.resume(), fillTap(bg, entry))
    up.release(r.lease, outcome.complete && ch.reusable)
    finishFill(bg, entry, outcome.complete)
  } finally {
    endRun(bg)
  }
}
