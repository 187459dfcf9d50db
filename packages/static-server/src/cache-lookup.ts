import { PassThrough } from 'node:stream'
import { accelRedirect } from './accel-redirect.js'
import { conditional } from './cache-conditional.js'
import { endRun } from './cache-fill.js'
import { CacheEntry, type CacheRun, type CacheZone, cacheKey, headValidity, isFresh, predicates } from './proxy-cache.js'
import { clientHead } from './proxy-response.js'
import { startUpstreamAnswer, upstreamAnswer } from './upstream-answer.js'
import type { RequestState } from './request-state.js'

/** The content phase goes on to the backend, or the cache answered (a ProxyResult). */
export type LookupOutcome = 'fetch' | { answered: undefined | number | 'restart'; background?: true }

/** While an expired entry is updated, other requests see it as updating (node->updating). */
const UPDATING_FOREVER = Number.MAX_SAFE_INTEGER

/**
 * ngx_http_upstream_cache for one request: proxy_cache_bypass, the lookup, min_uses,
 * proxy_cache_lock (waiters park on the store's busy entry, as varnishd's coalescing), and
 * what an expired entry does: EXPIRED (fetched, conditionally with proxy_cache_revalidate)
 * or UPDATING (served stale while another request updates it), or STALE with
 * proxy_cache_background_update (the caller then starts the update).
 */
export async function cacheLookup(st: RequestState, zone: CacheZone): Promise<LookupOutcome> {
  const conf = st.conf.proxyCache
  const key = cacheKey(conf, st)
  const run: CacheRun = {
    zone,
    conf,
    key,
    status: 'MISS',
    cacheable: true,
    stale: undefined,
    busy: undefined,
    updater: false,
    revalidating: undefined,
    convertHead: st.method === 'HEAD' && conf.convertHead,
    answersConditionals: false,
  }
  st.cacheRun = run
  if (predicates(conf.bypass, st)) {
    run.status = 'BYPASS'
    return 'fetch'
  }
  const began = Date.now()
  for (;;) {
    const now = Date.now()
    const r = zone.store.lookup(key, { headers: st.req.headers, url: key, ignoreBusy: !conf.lock || zone.lockExpired(key, now, conf.lockAgeMs), alwaysMiss: false }, now)
    if (r.kind === 'hit') {
      const e = r.obj
      if (isFresh(e, now)) {
        run.status = 'HIT'
        return { answered: sendCached(st, e) }
      }
      const nowSec = Math.floor(now / 1000)
      const staleUpdating = e.validSec + e.updatingSec >= nowSec
      const mayServeStale = conf.useStale.has('updating') || staleUpdating
      run.stale = e
      if (e.updatingUntil > now) {
        if (mayServeStale) {
          run.status = 'UPDATING'
          return { answered: sendCached(st, e) }
        }
      } else {
        e.updatingUntil = UPDATING_FOREVER
        run.updater = true
        if (conf.backgroundUpdate && mayServeStale) {
          // ngx_http_upstream_cache: the stale entry answers (STALE) and a background request updates it.
          run.status = 'STALE'
          if (conf.revalidate && e.status === 200 && (e.etag !== undefined || e.lastModified !== undefined)) run.revalidating = e
          const answered = sendCached(st, e)
          if (answered !== undefined) {
            endRun(run)
            return { answered }
          }
          return { answered, background: true }
        }
      }
      run.status = 'EXPIRED'
      if (conf.revalidate && e.status === 200 && (e.etag !== undefined || e.lastModified !== undefined)) run.revalidating = e
      return 'fetch'
    }
    if (r.kind === 'busy') {
      // proxy_cache_lock: wait for the fetch under way, up to proxy_cache_lock_timeout; past it
      // this request fetches for itself and stores nothing ("cache lock timeout").
      const left = conf.lockTimeoutMs - (now - began)
      const ageLeft = zone.lockAgeLeft(key, now, conf.lockAgeMs)
      if (left <= 0) {
        run.cacheable = false
        return 'fetch'
      }
      await waitFor(r.wait, Math.min(left, ageLeft))
      continue
    }
    // ngx_http_file_cache_exists: an entry is made only once it was asked for min_uses times.
    if (conf.minUses > 1 && zone.use(key, now) < conf.minUses) {
      run.cacheable = false
      return 'fetch'
    }
    if (conf.lock) {
      run.busy = new CacheEntry(0, key)
      zone.beginBusy(run.busy, now)
    }
    return 'fetch'
  }
}

function waitFor(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, Math.max(1, ms))
    // The store's busy promise only ever resolves.
    void p.then(() => {
      clearTimeout(t)
      resolve()
    })
  })
}

/**
 * ngx_http_upstream_cache_send: the stored head goes through this location's processing of a
 * backend head (hidden fields, proxy_redirect, X-Accel-*), then the stored body. A stored
 * X-Accel-Redirect redirects again, as in nginx.
 */
export function sendCached(st: RequestState, e: CacheEntry): undefined | number | 'restart' {
  const head = { version: e.version, status: e.status, statusText: e.reason, fields: e.headers, size: 0 }
  st.upstreamFields = e.headers
  const ch = clientHead(st, head)
  if (ch === 'invalid') return 502
  if (ch.accel.redirect !== undefined) return accelRedirect(st, e.headers, ch.accel.redirect)
  // On a hit the stored head is processed again: a Set-Cookie (not ignored) makes it uncacheable.
  const cond = headValidity(e.headers, st.conf.proxyIgnoreHeaders, Date.now()).cacheable ? conditional(st, ch.status, e.headers) : undefined
  if (cond === 412) return 412
  const a = upstreamAnswer(st, ch, e.headers, cond, true)
  if (a === 416) return 416
  const out = new PassThrough()
  startUpstreamAnswer(st, a, out)
  out.end(e.body !== undefined && e.body.length > 0 && ch.framing.kind !== 'none' ? e.body : undefined)
  return undefined
}
