import type { CacheObject } from '../cache-object.js'

/**
 * varnish-modules' xkey index (vmod_xkey.c): surrogate keys to the stored objects that carry
 * them, from the response fields `xkey` and `X-HashTwo` (the name xkey had before), each a
 * list of keys separated by spaces or commas. A purge reaches its objects through the index,
 * in time proportional to the objects purged, not to the cache. The keys of one object are
 * bounded by the size of a backend's head (undici's maxHeaderSize, 16 KiB: a few thousand
 * keys; varnishd's http_resp_hdr_len is 8 KiB), and here also by MAX_KEYS of at most
 * MAX_KEY_BYTES each, so a header with thousands of keys costs memory in proportion to it.
 */
const MAX_KEYS = 8192
const MAX_KEY_BYTES = 256
const SEPARATORS = /[\s,]+/

export class XkeyIndex {
  readonly #objects = new Map<string, Set<CacheObject>>()
  readonly #keysOf = new WeakMap<CacheObject, string[]>()

  get keyCount(): number {
    return this.#objects.size
  }

  /** An object was stored: its keys point at it. */
  added(obj: CacheObject): void {
    const keys = keysOf(obj.headers)
    if (keys === undefined) return
    this.#keysOf.set(obj, keys)
    for (const key of keys) {
      let set = this.#objects.get(key)
      if (set === undefined) {
        set = new Set()
        this.#objects.set(key, set)
      }
      set.add(obj)
    }
  }

  /** An object left the store. */
  removed(obj: CacheObject): void {
    const keys = this.#keysOf.get(obj)
    if (keys === undefined) return
    this.#keysOf.delete(obj)
    for (const key of keys) {
      const set = this.#objects.get(key)
      if (set === undefined) continue
      set.delete(obj)
      if (set.size === 0) this.#objects.delete(key)
    }
  }

  /** The stored objects carrying any of `keys` (a list as the headers have it), each once. */
  objectsOf(keys: string): Set<CacheObject> {
    const out = new Set<CacheObject>()
    for (const key of keys.split(SEPARATORS)) {
      if (key === '') continue
      const set = this.#objects.get(key)
      if (set !== undefined) for (const o of set) out.add(o)
    }
    return out
  }
}

function keysOf(headers: readonly string[]): string[] | undefined {
  let keys: Set<string> | undefined
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    if ((name.length !== 4 && name.length !== 9) || (name.toLowerCase() !== 'xkey' && name.toLowerCase() !== 'x-hashtwo')) continue
    for (const key of (headers[i + 1] as string).split(SEPARATORS)) {
      if (key === '' || key.length > MAX_KEY_BYTES) continue
      keys ??= new Set()
      if (keys.size >= MAX_KEYS) break
      keys.add(key)
    }
  }
  return keys === undefined ? undefined : [...keys]
}
