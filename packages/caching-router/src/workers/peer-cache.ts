import type { MessagePort } from 'node:worker_threads'
import { CacheObject } from '../cache-object.js'
import type { EsiProgram } from '../esi/esi-program.js'
import type { CacheStore } from '../store.js'

/**
 * One cache across worker threads (`--workers N`): every hash has an owner worker (its hash
 * range, `ownerOf`), whose store holds the object every worker may copy and whose busy marker
 * coalesces the misses of all workers. A worker misses locally, asks the owner: a hit there is
 * copied into the asker's store (its later hits cost nothing more than today's); a miss there
 * leaves a busy marker at the owner and the asker fetches with its own VCL, then hands the
 * object over; other workers' misses wait at the owner meanwhile. The README says why this
 * and not a shared-memory store.
 */

/** An object as it crosses threads: its head, its body and what its freshness was computed from. */
export interface ObjectData {
  xid: number
  status: number
  reason: string
  headers: string[]
  body: Uint8Array
  tOrigin: number
  ttl: number
  grace: number
  keep: number
  staleIfError: number
  varyNames: string[] | undefined
  varyKey: string
  contentLength: string | undefined
  /** How the body is stored: gzip'ed (and its inflated length), an ESI page's program. */
  gzip: boolean
  plainLength: number | undefined
  esiGzip: boolean
  esi: EsiProgram | undefined
}

export type PeerMessage =
  | { t: 'get'; id: number; hash: string; headers: string[]; url: string }
  | { t: 'object'; id: number; data: ObjectData }
  /** Fetch it yourself; `token` set: the owner holds a busy marker until `put` or `abandon`. */
  | { t: 'fetch'; id: number; token: number | undefined }
  | { t: 'put'; token: number | undefined; hash: string; data: ObjectData }
  | { t: 'abandon'; token: number }
  | { t: 'purge'; hash: string }
  | { t: 'ban'; expression: string }

type Answer = { kind: 'object'; data: ObjectData } | { kind: 'fetch'; token: number | undefined }

/** How long an owner keeps a busy marker for an asker that neither hands the object over nor gives up. */
const MARKER_LIMIT_MS = 120_000

/** FNV-1a over the hash's characters: any worker computes the same owner. */
export function ownerOf(hash: string, count: number): number {
  let h = 0x811c9dc5
  for (let i = 0; i < hash.length; i++) h = Math.imul(h ^ hash.charCodeAt(i), 0x01000193)
  return (h >>> 0) % count
}

export function objectData(obj: CacheObject): ObjectData {
  return {
    xid: obj.xid,
    status: obj.status,
    reason: obj.reason,
    headers: obj.headers,
    body: obj.body ?? new Uint8Array(0),
    tOrigin: obj.tOrigin,
    ttl: obj.ttl,
    grace: obj.grace,
    keep: obj.keep,
    staleIfError: obj.staleIfError,
    varyNames: obj.varyNames,
    varyKey: obj.varyKey,
    contentLength: obj.contentLength,
    gzip: obj.gzip,
    plainLength: obj.plainLength,
    esiGzip: obj.esiGzip,
    esi: obj.esi,
  }
}

/** Fills `obj` (or a new object) from what a peer sent. */
export function objectFrom(data: ObjectData, hash: string, obj = new CacheObject(data.xid, hash)): CacheObject {
  obj.setHead(data.status, data.reason, data.headers)
  const body = Buffer.from(data.body.buffer, data.body.byteOffset, data.body.byteLength)
  if (body.length > 0) obj.append(body)
  obj.complete()
  obj.tOrigin = data.tOrigin
  obj.ttl = data.ttl
  obj.grace = data.grace
  obj.keep = data.keep
  obj.staleIfError = data.staleIfError
  obj.varyNames = data.varyNames
  obj.varyKey = data.varyKey
  obj.contentLength = data.contentLength
  // Without these a copy of a gzip object went gzip'ed to clients that take no gzip, and a
  // copy of an ESI page went out with its tags.
  obj.gzip = data.gzip
  obj.plainLength = data.plainLength
  obj.esiGzip = data.esiGzip
  obj.esi = data.esi
  return obj
}

interface Hooks {
  /** A ban from a peer's VCL: added here without being sent on. */
  ban(expression: string): void
  /** A copy from a peer is in this worker's store (`--brotli` makes its brotli copy here). */
  copied?(obj: CacheObject): void
}

export class PeerCache {
  readonly self: number
  readonly count: number
  readonly #store: CacheStore
  readonly #clock: () => number
  readonly #hooks: Hooks
  readonly #ports: Array<MessagePort | undefined>
  #nextId = 0
  readonly #pending = new Map<number, { resolve: (a: Answer) => void; owner: number }>()
  // Owner side: busy markers held for askers, by token.
  readonly #markers = new Map<number, { marker: CacheObject; from: number; timer: NodeJS.Timeout }>()
  // Asker side: local busy objects whose fill the owner waits for.
  readonly #handing = new Map<CacheObject, { owner: number; token: number }>()

  constructor(self: number, count: number, store: CacheStore, clock: () => number, hooks: Hooks) {
    this.self = self
    this.count = count
    this.#store = store
    this.#clock = clock
    this.#hooks = hooks
    this.#ports = new Array(count).fill(undefined)
    store.onUnbusy = (obj, inserted) => this.#unbusied(obj, inserted)
    store.onPurge = (hash) => this.#broadcast({ t: 'purge', hash })
  }

  /** The channel to worker `index` (again after that worker was restarted). */
  connect(index: number, port: MessagePort): void {
    this.#ports[index]?.close()
    this.#ports[index] = port
    port.on('message', (m: PeerMessage) => this.#receive(index, m))
    port.on('close', () => this.#gone(index, port))
    port.unref()
  }

  isRemote(hash: string): boolean {
    return ownerOf(hash, this.count) !== this.self
  }

  /**
   * A local miss on a hash another worker owns: `obj` is this worker's busy object. Either the
   * owner's copy fills it (`true`), or `fetch` runs and the result is handed to the owner.
   */
  fill(hash: string, headers: readonly string[], url: string, obj: CacheObject, fetch: () => void, filled: () => void): void {
    const owner = ownerOf(hash, this.count)
    const port = this.#ports[owner]
    if (port === undefined) {
      fetch()
      return
    }
    const id = ++this.#nextId
    this.#pending.set(id, {
      owner,
      resolve: (a) => {
        if (a.kind === 'object') {
          objectFrom(a.data, hash, obj)
          this.#store.unbusy(obj, true, this.#clock())
          this.#hooks.copied?.(obj)
          filled()
          return
        }
        if (a.token !== undefined) this.#handing.set(obj, { owner, token: a.token })
        fetch()
      },
    })
    port.postMessage({ t: 'get', id, hash, headers: [...headers], url } satisfies PeerMessage)
  }

  /** A ban from this worker's VCL, for every other worker. */
  ban(expression: string): void {
    this.#broadcast({ t: 'ban', expression })
  }

  #broadcast(m: PeerMessage): void {
    for (const port of this.#ports) port?.postMessage(m)
  }

  #receive(from: number, m: PeerMessage): void {
    switch (m.t) {
      case 'get':
        this.#answer(from, m)
        return
      case 'object':
      case 'fetch': {
        const p = this.#pending.get(m.id)
        if (p === undefined) return
        this.#pending.delete(m.id)
        p.resolve(m.t === 'object' ? { kind: 'object', data: m.data } : { kind: 'fetch', token: m.token })
        return
      }
      case 'put': {
        const now = this.#clock()
        const obj = objectFrom(m.data, m.hash)
        this.#store.insert(obj, now)
        this.#hooks.copied?.(obj)
        if (m.token !== undefined) this.#release(m.token)
        return
      }
      case 'abandon':
        this.#release(m.token)
        return
      case 'purge':
        this.#store.purge(m.hash, false)
        return
      case 'ban':
        this.#hooks.ban(m.expression)
        return
    }
  }

  /** Owner side: what this store has for a peer's miss. */
  #answer(from: number, m: { id: number; hash: string; headers: string[]; url: string }): void {
    const port = this.#ports[from]
    if (port === undefined) return
    const result = this.#store.lookup(m.hash, { headers: m.headers, url: m.url, ignoreBusy: false, alwaysMiss: false }, this.#clock())
    switch (result.kind) {
      case 'hit': {
        const obj = result.obj
        // Still streaming from the backend: handed over once complete.
        obj.follow({
          data() {},
          end: () => port.postMessage({ t: 'object', id: m.id, data: objectData(obj) } satisfies PeerMessage),
          error: () => this.#answer(from, m),
        })
        return
      }
      case 'busy':
        result.wait.then(() => this.#answer(from, m))
        return
      case 'miss': {
        // Coalescing across workers: this marker makes every other worker's miss wait here.
        const marker = new CacheObject(0, m.hash)
        this.#store.beginBusy(marker)
        const token = ++this.#nextId
        const timer = setTimeout(() => this.#release(token), MARKER_LIMIT_MS)
        timer.unref()
        this.#markers.set(token, { marker, from, timer })
        port.postMessage({ t: 'fetch', id: m.id, token } satisfies PeerMessage)
        return
      }
      default:
        // Grace (the asker refreshes it as its own miss) or hit-for-miss: no coalescing.
        port.postMessage({ t: 'fetch', id: m.id, token: undefined } satisfies PeerMessage)
    }
  }

  #release(token: number): void {
    const held = this.#markers.get(token)
    if (held === undefined) return
    this.#markers.delete(token)
    clearTimeout(held.timer)
    this.#store.unbusy(held.marker, false, this.#clock())
  }

  /** Asker side: the fill the owner waits for has its head; the object goes to the owner when complete. */
  #unbusied(obj: CacheObject, inserted: boolean): void {
    const h = this.#handing.get(obj)
    if (h === undefined) return
    this.#handing.delete(obj)
    const port = this.#ports[h.owner]
    if (!inserted) {
      port?.postMessage({ t: 'abandon', token: h.token } satisfies PeerMessage)
      return
    }
    obj.follow({
      data() {},
      end: () => port?.postMessage({ t: 'put', token: h.token, hash: obj.hash, data: objectData(obj) } satisfies PeerMessage),
      error: () => port?.postMessage({ t: 'abandon', token: h.token } satisfies PeerMessage),
    })
  }

  /** A worker went away: the markers it held are released, its questions answered "fetch". */
  #gone(index: number, port: MessagePort): void {
    if (this.#ports[index] !== port) return
    this.#ports[index] = undefined
    for (const [token, held] of this.#markers) if (held.from === index) this.#release(token)
    for (const [id, p] of this.#pending) {
      if (p.owner !== index) continue
      this.#pending.delete(id)
      p.resolve({ kind: 'fetch', token: undefined })
    }
  }
}
