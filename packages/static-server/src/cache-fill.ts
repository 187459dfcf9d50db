import { getHeader } from '@edgestack/common'
import { type CacheEntry, type CacheRun, headValidity, newEntry, predicates, validFor } from './proxy-cache.js'
import type { RequestState } from './request-state.js'
import type { UpstreamHead } from './upstream-head.js'

/**
 * At the backend's head (ngx_http_upstream_send_response): the entry this answer fills, or
 * undefined when it is not stored: not cacheable (min_uses, a lock timeout, Set-Cookie,
 * Cache-Control, ...), proxy_no_cache, proxy_buffering off, or no validity from the head nor
 * from proxy_cache_valid.
 */
export function entryFor(st: RequestState, run: CacheRun, head: UpstreamHead): CacheEntry | undefined {
  if (!run.cacheable || !st.conf.proxyBuffering) return undefined
  const now = Date.now()
  const hv = headValidity(head.fields, st.conf.proxyIgnoreHeaders, now)
  // ngx_http_upstream_process_headers: r->disable_not_modified = !u->cacheable, decided before
  // proxy_no_cache and the validity are.
  run.answersConditionals = hv.cacheable
  if (!hv.cacheable || predicates(run.conf.noCache, st)) return undefined
  // X-Accel-Buffering: no turns buffering off for this answer, and an unbuffered answer is not stored.
  if (!st.conf.proxyIgnoreHeaders.has('x-accel-buffering') && getHeader(head.fields, 'x-accel-buffering')?.toLowerCase() === 'no') return undefined
  let valid = hv.validSec
  if (valid === 0) {
    const sec = validFor(run.conf, head.status)
    if (sec > 0) valid = Math.floor(now / 1000) + sec
  }
  if (valid === 0) return undefined
  return newEntry(run, st, head, hv, valid)
}

/**
 * What the relay hands each body chunk to: the entry keeps it while the entry fits the zone
 * (max_size); a larger one is relayed to the client and dropped, never held whole in memory.
 */
export function fillTap(run: CacheRun, entry: CacheEntry): (c: Buffer) => void {
  const max = run.zone.store.maxBytes
  return (c) => {
    entry.append(c)
    if (entry.size > max) entry.dropBody()
  }
}

/**
 * The body is in (or broke off): a complete entry is stored, replacing the expired one of
 * its variant; the lock is released and its waiters look again.
 */
export function finishFill(run: CacheRun, entry: CacheEntry | undefined, complete: boolean): void {
  const now = Date.now()
  const store = entry !== undefined && complete && entry.size <= run.zone.store.maxBytes
  if (entry !== undefined) {
    if (store) entry.complete()
    else entry.fail()
  }
  if (run.busy !== undefined && run.busy === entry) {
    run.zone.endBusy(entry, store, now)
    run.busy = undefined
  } else if (store) run.zone.store.insert(entry, now)
}

/** The request is over: a lock never filled is released, an updating flag cleared. */
export function endRun(run: CacheRun): void {
  if (run.busy !== undefined) {
    run.zone.endBusy(run.busy, false, Date.now())
    run.busy = undefined
  }
  if (run.updater && run.stale !== undefined) {
    run.stale.updatingUntil = 0
    run.updater = false
  }
}

/**
 * proxy_cache_use_stale: the expired entry answers instead of a failed try (`error`,
 * `timeout`, `invalid_header`) or an error status (`http_500` ...); a failed try also within
 * a Cache-Control stale-if-error window whatever the directive says. Only for EXPIRED.
 */
export function staleFor(run: CacheRun | undefined, what: string): CacheEntry | undefined {
  if (run?.status !== 'EXPIRED' || run.stale === undefined) return undefined
  const e = run.stale
  // c->stale_error is read by ngx_http_upstream_next (a failed try), not for an error status.
  const staleError = !what.startsWith('http_') && e.validSec + e.errorSec >= Math.floor(Date.now() / 1000)
  if (!run.conf.useStale.has(what) && !staleError) return undefined
  run.status = 'STALE'
  return e
}

/**
 * A 304 to a revalidation (ngx_http_upstream_test_next): the stored answer is sent as
 * REVALIDATED, and its validity renewed from the 304's fields, else the stored fields, else
 * proxy_cache_valid for the stored status; without any, it stays expired.
 */
export function revalidated(st: RequestState, run: CacheRun, head: UpstreamHead): CacheEntry | undefined {
  const e = run.revalidating
  if (head.status !== 304 || e === undefined || run.status !== 'EXPIRED') return undefined
  const now = Date.now()
  const ignored = st.conf.proxyIgnoreHeaders
  let valid = headValidity(head.fields, ignored, now)
  if (valid.validSec === 0) valid = headValidity(e.headers, ignored, now)
  let sec = valid.validSec
  if (sec === 0) {
    const v = validFor(run.conf, e.status)
    if (v > 0) sec = Math.floor(now / 1000) + v
  }
  if (sec !== 0) {
    e.validSec = sec
    e.updatingSec = valid.updatingSec
    e.errorSec = valid.errorSec
  }
  run.status = 'REVALIDATED'
  return e
}
