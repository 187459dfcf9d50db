import { ObjectStore } from '@edgestack/common'
import type { CacheObject } from './cache-object.js'
import type { Counters } from './counters.js'
import { XkeyIndex } from './xkey/xkey-index.js'

export { type BanChecker, type LookupRequest, type LookupResult, varyKey, varyNamesOf } from '@edgestack/common'

/**
 * The router's cache: common's ObjectStore (storage, lookup, ttl/grace/keep, coalescing, LRU,
 * shared with static-server's proxy_cache) with varnish-modules' xkey index over its objects.
 */
export class CacheStore extends ObjectStore<CacheObject> {
  /** Surrogate keys (`import xkey;`): told of every object stored and removed. */
  readonly xkeys = new XkeyIndex()

  /** `clock`: milliseconds, the router's (tests pass their own); the sweep reads it. */
  constructor(maxBytes: number, counters: Counters, clock: () => number = Date.now) {
    super(maxBytes, counters, { clock })
  }

  protected override added(obj: CacheObject): void {
    this.xkeys.added(obj)
  }

  protected override removed(obj: CacheObject): void {
    this.xkeys.removed(obj)
  }

  /**
   * `xkey.purge` / `xkey.softpurge`: every stored object carrying one of `keys`, through the
   * index. A soft purge expires it now, keeping grace and keep (vmod_xkey's EXP_Rearm with
   * ttl 0); a hard one removes it. Returns how many objects it reached.
   */
  xkeyPurge(keys: string, soft: boolean, nowMs: number): number {
    const objects = this.xkeys.objectsOf(keys)
    for (const obj of objects) {
      if (!soft) this.remove(obj)
      else if (obj.ttlLeft(nowMs) > 0) obj.ttl = (nowMs - obj.tOrigin) / 1000
    }
    return objects.size
  }
}
