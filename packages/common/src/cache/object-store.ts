import type { StoredObject } from './stored-object.js'

/** The counters a store keeps (varnishd's MAIN.n_object, n_lru_nuked, n_expired). */
export interface StoreCounters {
  n_object: number
  n_lru_nuked: number
  n_expired: number
}

export interface StoreOptions {
  /** Milliseconds, the daemon's (tests pass their own); the sweep reads it. */
  clock?: () => number
  /**
   * nginx's `inactive`: an object no lookup returned for this long is dropped whatever its
   * freshness (ngx_http_file_cache_expire). 0: objects live by ttl + grace + keep only (varnishd).
   */
  inactiveMs?: number
}

/** varnish's `objhead`: every variant and marker under one hash, and the fetch in progress. */
interface ObjHead<O> {
  objects: O[]
  /** A fetch whose response head has not arrived yet: misses wait for it (coalescing). */
  busy: O | undefined
  waiters: Array<() => void>
}

export type LookupResult<O extends StoredObject = StoredObject> =
  | { kind: 'hit'; obj: O }
  | { kind: 'grace'; obj: O; refresh: boolean }
  | { kind: 'hitmiss'; obj: O }
  | { kind: 'busy'; wait: Promise<void> }
  | { kind: 'miss'; stale: O | undefined }

export interface LookupRequest {
  headers: readonly string[]
  url: string
  ignoreBusy: boolean
  alwaysMiss: boolean
}

/** The bans in force, tested against an object at lookup (varnish's "ban lurker" left out). */
export interface BanChecker<O extends StoredObject = StoredObject> {
  readonly newest: number
  isBanned(obj: O, req: LookupRequest): boolean
}

/** Most variants (Vary) kept under one hash. */
const MAX_VARIANTS = 32

/** How often an object moves to the LRU's young end at most (varnishd's `lru_interval`). */
const LRU_INTERVAL_MS = 2000

/**
 * A cache in memory: objects keyed by hash, variants by Vary, bounded in bytes (varnishd's
 * `-s malloc,SIZE`, nginx's `max_size`) with least-recently-used eviction (`n_lru_nuked`),
 * and one fetch at a time per hash that other misses wait for (varnishd's busy objcore,
 * nginx's proxy_cache_lock). caching-router and static-server's proxy_cache both keep theirs here.
 */
export class ObjectStore<O extends StoredObject = StoredObject> {
  readonly #heads = new Map<string, ObjHead<O>>()
  // Insertion-ordered: the first entry is the least recently used.
  readonly #lru = new Map<O, number>()
  readonly maxBytes: number
  #bytes = 0
  readonly #counters: StoreCounters
  readonly #inactiveMs: number
  #bans: BanChecker<O> | undefined
  readonly #sweep: NodeJS.Timeout
  /** `--workers`: told when a busy fetch has its head (inserted or not); unset with one worker. */
  onUnbusy: ((obj: O, inserted: boolean) => void) | undefined
  /** `--workers`: told of every purge made here, to make it in every worker. */
  onPurge: ((hash: string) => void) | undefined

  constructor(maxBytes: number, counters: StoreCounters, options: StoreOptions = {}) {
    this.maxBytes = maxBytes
    this.#counters = counters
    this.#inactiveMs = options.inactiveMs ?? 0
    const clock = options.clock ?? Date.now
    this.#sweep = setInterval(() => this.expire(clock()), 1000)
    this.#sweep.unref()
  }

  /** An object went into the store (a subclass indexes it: the router's xkeys). */
  protected added(_obj: O): void {}

  /** An object left the store. */
  protected removed(_obj: O): void {}

  get bytes(): number {
    return this.#bytes
  }

  get objectCount(): number {
    return this.#lru.size
  }

  setBans(bans: BanChecker<O>): void {
    this.#bans = bans
  }

  lookup(hash: string, req: LookupRequest, nowMs: number): LookupResult<O> {
    const oh = this.#heads.get(hash)
    if (!oh) return { kind: 'miss', stale: undefined }
    let stale: O | undefined
    for (let i = 0; i < oh.objects.length; i++) {
      const obj = oh.objects[i] as O
      if (obj.state === 'failed') continue
      const left = obj.ttlLeft(nowMs)
      if (left + obj.grace + obj.keep <= 0 || this.#inactive(obj, nowMs)) {
        this.remove(obj)
        i--
        continue
      }
      // RFC 9111 §4.1: a Vary listing `*` among other names never matches (builtin.vcl makes only
      // a bare `Vary: *` hit-for-miss).
      if (obj.varyNames !== undefined && (varyKey(obj.varyNames, req.headers) !== obj.varyKey || obj.varyNames.includes('*'))) continue
      if (this.#bans?.isBanned(obj, req)) {
        this.remove(obj)
        i--
        continue
      }
      if (left > 0) {
        if (obj.hitForMiss) return { kind: 'hitmiss', obj }
        if (req.alwaysMiss) continue
        this.#touch(obj, nowMs)
        return { kind: 'hit', obj }
      }
      if (!obj.hitForMiss && (stale === undefined || obj.tOrigin > stale.tOrigin)) stale = obj
    }
    if (stale && !req.alwaysMiss && stale.ttlLeft(nowMs) + stale.grace > 0 && stale.state === 'complete') {
      this.#touch(stale, nowMs)
      // One background refresh at a time: a busy fetch means it is already under way.
      return { kind: 'grace', obj: stale, refresh: oh.busy === undefined }
    }
    if (oh.busy !== undefined && !req.ignoreBusy) {
      return { kind: 'busy', wait: new Promise<void>((resolve) => oh.waiters.push(resolve)) }
    }
    return { kind: 'miss', stale }
  }

  /** Marks a fetch in progress under `hash`; later misses wait for its response head. */
  beginBusy(obj: O): void {
    const oh = this.#head(obj.hash)
    if (oh.busy === undefined) oh.busy = obj
  }

  /**
   * The busy fetch has its response head: store the object (or marker) if wanted and wake
   * the waiters, who look up again and stream from it.
   */
  unbusy(obj: O, insert: boolean, nowMs: number): void {
    const oh = this.#heads.get(obj.hash)
    if (insert) this.insert(obj, nowMs)
    if (this.onUnbusy !== undefined) this.onUnbusy(obj, insert)
    if (!oh || oh.busy !== obj) return
    oh.busy = undefined
    const waiters = oh.waiters
    oh.waiters = []
    for (const w of waiters) w()
    if (oh.objects.length === 0 && oh.waiters.length === 0) this.#heads.delete(obj.hash)
  }

  insert(obj: O, nowMs: number): void {
    let oh = this.#head(obj.hash)
    obj.tInserted = nowMs
    obj.tUsed = nowMs
    obj.banSeq = this.#bans?.newest ?? 0
    // A new object replaces its variant (and any hit-for-miss marker for it).
    for (let i = oh.objects.length - 1; i >= 0; i--) {
      const old = oh.objects[i] as O
      if (old.varyKey === obj.varyKey || old.hitForMiss || obj.hitForMiss) this.remove(old)
    }
    // Removing the last object of a head no fetch holds drops the head: the new object goes
    // under a fresh one (else it would sit in a head no lookup finds).
    oh = this.#head(obj.hash)
    // Every lookup scans the variants: a client inventing Vary values must not make that
    // scan long (varnishd has no such bound), so the oldest variant gives way.
    if (oh.objects.length >= MAX_VARIANTS) this.remove(oh.objects[0] as O)
    oh.objects.push(obj)
    obj.stored = true
    if (!obj.hitForMiss) this.added(obj)
    this.#lru.set(obj, nowMs)
    this.#bytes += obj.size
    this.#counters.n_object = this.#lru.size
    this.#makeRoom(obj)
  }

  /**
   * A fetch that went to the backend past a hit-for-miss marker came back uncacheable again:
   * when that marker is all there is under the hash, it is renewed in place (ttl counted from
   * now), which is what inserting a new marker would leave. varnishd makes a new objcore each
   * time; here one object per request that lives just long enough to reach V8's old space made
   * the router's RSS grow by several MiB a second under a pass load until a full GC.
   */
  renewMarker(hash: string, ttl: number, nowMs: number): boolean {
    const oh = this.#heads.get(hash)
    const marker = oh?.objects.length === 1 ? oh.objects[0] : undefined
    if (marker === undefined || !marker.hitForMiss || !marker.stored) return false
    marker.ttl = ttl
    marker.tOrigin = nowMs
    marker.tInserted = nowMs
    marker.banSeq = this.#bans?.newest ?? 0
    this.#touch(marker, nowMs)
    return true
  }

  /** A stored object grew by `n` bytes while streaming; evicts others, or gives it up if too big. */
  grew(obj: O, n: number): void {
    if (obj.stored) this.#bytes += n
    if (obj.size > this.maxBytes) {
      // Larger than the whole store: relayed to whoever follows it, never stored, not kept.
      if (obj.stored) this.remove(obj)
      obj.dropBody()
      return
    }
    if (obj.stored) this.#makeRoom(obj)
  }

  #makeRoom(keep: O): void {
    if (this.#bytes <= this.maxBytes) return
    if (keep.size > this.maxBytes) {
      this.remove(keep)
      return
    }
    for (const victim of this.#lru.keys()) {
      if (this.#bytes <= this.maxBytes) break
      if (victim === keep) continue
      this.remove(victim)
      this.#counters.n_lru_nuked++
    }
  }

  remove(obj: O): void {
    const oh = this.#heads.get(obj.hash)
    if (oh) {
      const i = oh.objects.indexOf(obj)
      if (i !== -1) oh.objects.splice(i, 1)
      if (oh.objects.length === 0 && oh.busy === undefined) this.#heads.delete(obj.hash)
    }
    if (obj.stored) {
      this.removed(obj)
      obj.stored = false
      this.#lru.delete(obj)
      this.#bytes -= obj.size
      this.#counters.n_object = this.#lru.size
    }
  }

  /**
   * Removes every variant under a hash (a purge, or RFC 9111 §4.4 invalidation); `spread`:
   * in every worker too (a purge a peer sent is not sent on).
   */
  purge(hash: string, spread = true): number {
    if (spread && this.onPurge !== undefined) this.onPurge(hash)
    const oh = this.#heads.get(hash)
    if (!oh) return 0
    const objs = [...oh.objects]
    for (const o of objs) this.remove(o)
    return objs.length
  }

  /** Drops what is past ttl + grace + keep, or inactive. */
  expire(nowMs: number): void {
    for (const obj of this.#lru.keys()) {
      if (obj.ttlLeft(nowMs) + obj.grace + obj.keep <= 0 || this.#inactive(obj, nowMs)) {
        this.remove(obj)
        this.#counters.n_expired++
      }
    }
  }

  /** The oldest ban number any stored object still has to meet (for pruning the ban list). */
  oldestBanSeq(): number {
    let min = Number.POSITIVE_INFINITY
    for (const obj of this.#lru.keys()) if (obj.banSeq < min) min = obj.banSeq
    return min
  }

  close(): void {
    clearInterval(this.#sweep)
  }

  #inactive(obj: O, nowMs: number): boolean {
    return this.#inactiveMs > 0 && nowMs - obj.tUsed >= this.#inactiveMs
  }

  /** A hit: the object's place in the LRU, and its last use for nginx's `inactive` when a zone has one. */
  #touch(obj: O, nowMs: number): void {
    if (this.#inactiveMs > 0) obj.tUsed = nowMs
    const last = this.#lru.get(obj)
    if (last === undefined || nowMs - last < LRU_INTERVAL_MS) return
    this.#lru.delete(obj)
    this.#lru.set(obj, nowMs)
  }

  #head(hash: string): ObjHead<O> {
    let oh = this.#heads.get(hash)
    if (!oh) {
      oh = { objects: [], busy: undefined, waiters: [] }
      this.#heads.set(hash, oh)
    }
    return oh
  }
}

/** The request's values for the fields a response varies on, as one comparable string. */
export function varyKey(names: readonly string[], headers: readonly string[]): string {
  let key = ''
  for (const name of names) {
    key += '\0'
    for (let i = 0; i < headers.length; i += 2) {
      if ((headers[i] as string).toLowerCase() === name) key += `${(headers[i + 1] as string).trim()},`
    }
  }
  return key
}

/** Lower-case field names listed in Vary, or undefined when there is none. */
export function varyNamesOf(headers: readonly string[]): string[] | undefined {
  let names: string[] | undefined
  for (let i = 0; i < headers.length; i += 2) {
    if ((headers[i] as string).toLowerCase() !== 'vary') continue
    for (const t of (headers[i + 1] as string).split(',')) {
      const n = t.trim().toLowerCase()
      if (n === '') continue
      names ??= []
      names.push(n)
    }
  }
  return names
}
