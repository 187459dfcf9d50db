import { ObjectStore, StoredObject, varyKey } from '@edgestack/common'
import { parseHttpTime } from './http-date.js'
import type { CacheZoneModel, ProxyCacheConf } from './config/model.js'
import type { RequestState } from './request-state.js'
import type { UpstreamHead } from './upstream-head.js'
import { expand, type Template } from './variables.js'

/** ngx_http_upstream_cache_status' values ($upstream_cache_status). */
export type CacheStatus = 'MISS' | 'BYPASS' | 'EXPIRED' | 'STALE' | 'UPDATING' | 'REVALIDATED' | 'HIT'

/** `$scheme$proxy_host$request_uri`: ngx_http_proxy_merge_loc_conf's key when none is set. */
const DEFAULT_KEY: Template = [{ v: 'scheme' }, { v: 'proxy_host' }, { v: 'request_uri' }]
/** NGX_HTTP_CACHE_VARY_LEN: a longer Vary is not cached. */
const VARY_LEN = 128
/** Kept as long as `inactive` allows: nginx drops an entry for inactivity, never for age alone. */
const KEEP_SEC = 10 * 365 * 86400
/** Most keys whose proxy_cache_min_uses count is kept (nginx's keys zone bounds them). */
const MAX_USE_COUNTS = 100_000

/**
 * One cached answer, as nginx's cache file holds it: the backend's head as received (it goes
 * through the location's header processing again on every hit, as ngx_http_upstream_cache_send
 * does) and the decoded body, with valid_sec and the stale windows of Cache-Control.
 */
export class CacheEntry extends StoredObject {
  version = 1001
  /** nginx's valid_sec: fresh while the current second is not past it. */
  validSec = 0
  /** stale-while-revalidate and stale-if-error of Cache-Control (c->updating_sec, c->error_sec). */
  updatingSec = 0
  errorSec = 0
  /** An update of this (expired) entry is under way until then (node->updating and lock_time). */
  updatingUntil = 0
}

/** One proxy_cache_path zone: its entries in common's ObjectStore, and min_uses counts. */
export class CacheZone {
  readonly store: ObjectStore<CacheEntry>
  readonly #uses = new Map<string, { n: number; at: number }>()
  readonly #inactiveMs: number
  /** When each busy fetch began (proxy_cache_lock_age counts from there). */
  readonly #lockedAt = new Map<string, number>()

  constructor(model: CacheZoneModel) {
    this.#inactiveMs = model.inactiveMs
    this.store = new ObjectStore<CacheEntry>(model.maxBytes, { n_object: 0, n_lru_nuked: 0, n_expired: 0 }, { inactiveMs: model.inactiveMs })
  }

  /** ngx_http_file_cache_exists' node->uses: this request counted, the count returned. */
  use(key: string, now: number): number {
    let u = this.#uses.get(key)
    if (u !== undefined && now - u.at >= this.#inactiveMs) u = undefined
    if (u === undefined) {
      if (this.#uses.size >= MAX_USE_COUNTS) this.#uses.delete(this.#uses.keys().next().value as string)
      u = { n: 0, at: now }
    }
    this.#uses.delete(key)
    u.n++
    u.at = now
    this.#uses.set(key, u)
    return u.n
  }

  /** proxy_cache_lock: this request fetches `e`'s key; other misses wait for it. */
  beginBusy(e: CacheEntry, now: number): void {
    this.store.beginBusy(e)
    if (!this.#lockedAt.has(e.hash)) this.#lockedAt.set(e.hash, now)
  }

  /** The fetch is over: `e` stored (`insert`) or not, the waiters woken to look again. */
  endBusy(e: CacheEntry, insert: boolean, now: number): void {
    this.#lockedAt.delete(e.hash)
    this.store.unbusy(e, insert, now)
  }

  /** Milliseconds before the lock on `key` is older than proxy_cache_lock_age. */
  lockAgeLeft(key: string, now: number, ageMs: number): number {
    const at = this.#lockedAt.get(key)
    return at === undefined ? ageMs : at + ageMs - now
  }

  /** The lock on `key` is older than proxy_cache_lock_age: another request may fetch (and store). */
  lockExpired(key: string, now: number, ageMs: number): boolean {
    return this.lockAgeLeft(key, now, ageMs) <= 0
  }

  close(): void {
    this.store.close()
  }
}

/** What one request's cache decided (r->cache and u->cache_status). */
export interface CacheRun {
  zone: CacheZone
  conf: ProxyCacheConf
  key: string
  status: CacheStatus
  /** u->cacheable: the answer may be stored. */
  cacheable: boolean
  /** The expired entry this request updates (EXPIRED): stale answers and revalidation come from it. */
  stale: CacheEntry | undefined
  /** The entry being filled, marked busy for proxy_cache_lock. */
  busy: CacheEntry | undefined
  /** This request set the stale entry's updating flag (cleared when it is done). */
  updater: boolean
  /** The stale entry whose validators the fetch sends (proxy_cache_revalidate). */
  revalidating: CacheEntry | undefined
  /** The client's HEAD goes to the backend as GET (proxy_cache_convert_head). */
  convertHead: boolean
  /** The answer is cacheable: nginx's not_modified filter answers the client's conditionals. */
  answersConditionals: boolean
}

/** Whether a predicate list (proxy_cache_bypass, proxy_no_cache) holds: a value neither empty nor "0". */
export function predicates(list: readonly Template[], st: RequestState): boolean {
  for (const t of list) {
    const v = expand(t, st)
    if (v !== '' && v !== '0') return true
  }
  return false
}

/** The cache key of this request (proxy_cache_key). */
export function cacheKey(conf: ProxyCacheConf, st: RequestState): string {
  return expand(conf.key ?? DEFAULT_KEY, st)
}

/** Fresh: nginx compares valid_sec with ngx_time(), whole seconds. */
export function isFresh(e: CacheEntry, nowMs: number): boolean {
  return e.validSec >= Math.floor(nowMs / 1000)
}

/**
 * The validity a backend's head gives (ngx_http_upstream_process_* handlers of nginx 1.22, in
 * the order the fields came): X-Accel-Expires (seconds, `@` absolute, 0: not cached),
 * Cache-Control (no-cache / no-store / private: not cached; s-maxage, else max-age; 0 or a
 * bad number: not cached; stale-while-revalidate / stale-if-error), Expires (a date in the
 * past or invalid: not cached; only when nothing else set a validity), Set-Cookie (not
 * cached), Vary (`*` or longer than 128 bytes: not cached). proxy_ignore_headers turns each off.
 */
export interface HeadValidity {
  cacheable: boolean
  /** 0: none from the head (proxy_cache_valid decides). */
  validSec: number
  updatingSec: number
  errorSec: number
  vary: string | undefined
}

export function headValidity(fields: readonly string[], ignored: ReadonlySet<string>, nowMs: number): HeadValidity {
  const now = Math.floor(nowMs / 1000)
  const v: HeadValidity = { cacheable: true, validSec: 0, updatingSec: 0, errorSec: 0, vary: undefined }
  let xae = false
  for (let i = 0; i < fields.length; i += 2) {
    const name = (fields[i] as string).toLowerCase()
    const value = fields[i + 1] as string
    if (ignored.has(name)) continue
    switch (name) {
      case 'x-accel-expires': {
        xae = true
        if (value.startsWith('@')) {
          const n = atoi(value.slice(1))
          if (n >= 0) v.validSec = n
        } else {
          const n = atoi(value)
          if (n === 0) v.cacheable = false
          else if (n > 0) v.validSec = now + n
        }
        break
      }
      case 'cache-control':
        cacheControl(v, value, now, xae)
        break
      case 'expires': {
        if (v.validSec !== 0) break
        // ngx_http_upstream_process_expires reads it with ngx_parse_http_time (weekday unread,
        // anything after the time ignored).
        const t = parseHttpTime(value)
        if (t < 0 || t < now) v.cacheable = false
        else v.validSec = t
        break
      }
      case 'set-cookie':
        v.cacheable = false
        break
      case 'vary':
        if (!v.cacheable) break
        if (value.length > VARY_LEN || value === '*') v.cacheable = false
        v.vary = value
        break
    }
  }
  return v
}

/** ngx_http_upstream_process_cache_control (nginx 1.22): substring searches, as nginx makes them. */
function cacheControl(v: HeadValidity, value: string, now: number, xae: boolean): void {
  if (v.validSec !== 0 && xae) return
  const lower = value.toLowerCase()
  if (lower.includes('no-cache') || lower.includes('no-store') || lower.includes('private')) {
    v.cacheable = false
    return
  }
  let at = lower.indexOf('s-maxage=')
  let offset = 9
  if (at < 0) {
    at = lower.indexOf('max-age=')
    offset = 8
  }
  if (at >= 0) {
    const n = number(lower, at + offset)
    if (n === undefined || n === 0) {
      v.cacheable = false
      return
    }
    v.validSec = now + n
  }
  const swr = lower.indexOf('stale-while-revalidate=')
  if (swr >= 0) {
    const n = number(lower, swr + 23)
    if (n === undefined) {
      v.cacheable = false
      return
    }
    v.updatingSec = n
    v.errorSec = n
  }
  const sie = lower.indexOf('stale-if-error=')
  if (sie >= 0) {
    const n = number(lower, sie + 15)
    if (n === undefined) {
      v.cacheable = false
      return
    }
    v.errorSec = n
  }
}

/** Digits up to `,` `;` or a space; anything else there: undefined (nginx: not cacheable). */
function number(s: string, from: number): number | undefined {
  let n = 0
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 44 || c === 59 || c === 32) break
    if (c < 48 || c > 57) return undefined
    n = n * 10 + (c - 48)
    if (n > 2 ** 31) return undefined
  }
  return n
}

/** ngx_atoi: digits only, else -1 (NGX_ERROR). */
function atoi(s: string): number {
  if (!/^\d{1,10}$/.test(s)) return -1
  return Number(s)
}

/** ngx_http_file_cache_valid: the first proxy_cache_valid line naming the status (or `any`). */
export function validFor(conf: ProxyCacheConf, status: number): number {
  for (const v of conf.valid) if (v.status === 0 || v.status === status) return v.sec
  return 0
}

/** A new entry for an answer about to be stored. */
export function newEntry(run: CacheRun, st: RequestState, head: UpstreamHead, hv: HeadValidity, validSec: number): CacheEntry {
  const e = new CacheEntry(0, run.key)
  e.setHead(head.status, head.statusText, [...head.fields])
  e.version = head.version
  e.validSec = validSec
  e.updatingSec = hv.updatingSec
  e.errorSec = hv.errorSec
  e.tOrigin = Date.now()
  // The store keeps it for lookups until `inactive`; freshness is validSec's (isFresh).
  e.ttl = KEEP_SEC
  if (hv.vary !== undefined) {
    e.varyNames = hv.vary.split(',').map((n) => n.trim().toLowerCase()).filter((n) => n !== '')
    e.varyKey = varyKey(e.varyNames, st.req.headers)
  }
  return e
}
