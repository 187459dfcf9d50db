import { getHeader } from '../http1/headers.js'

/** The body of an object that has none (shared: bodies are never written to). */
const EMPTY = Buffer.alloc(0)

/** What a reader of an object still being fetched is told, chunk by chunk. */
export interface BodyListener {
  data(chunk: Buffer): void
  end(): void
  error(): void
}

/**
 * One stored response (varnish's `objcore` + `object`, nginx's cache node + file), engine-neutral:
 * caching-router and static-server's proxy_cache keep theirs in one ObjectStore. Its body may still be arriving from
 * the backend ("streaming", varnish's `beresp.do_stream`): readers replay what is there and
 * then follow the fetch, so coalesced waiters never wait for the whole body.
 */
export class StoredObject {
  readonly xid: number
  readonly hash: string
  status = 200
  reason = 'OK'
  /** The stored response header fields, hop-by-hop already gone. */
  headers: string[] = []
  /** Set when complete. */
  body: Buffer | undefined
  #chunks: Buffer[] = []
  received = 0
  state: 'busy' | 'streaming' | 'complete' | 'failed' = 'busy'
  /** When the response was generated at the origin (ms), Age already taken off. */
  tOrigin = 0
  /** When it was stored (ms), for bans. */
  tInserted = 0
  ttl = 0
  grace = 0
  keep = 0
  staleIfError = 0
  /** A hit-for-miss marker (varnish's HFM objcore): only says "do not coalesce, do not store". */
  hitForMiss = false
  /** Names (lower case) of the request fields the response varies on; undefined: no Vary. */
  varyNames: string[] | undefined
  /** The request's values for them, joined, at store time. */
  varyKey = ''
  hits = 0
  /** When a lookup last returned it (ms): nginx's `inactive` counts from there. */
  tUsed = 0
  /** The newest ban this object was tested against (or predates). */
  banSeq = 0
  /** Bytes the store counts: header fields and body. */
  size = 0
  /** Whether the store counts it (and may evict it). */
  stored = false
  /** Headers every hit sends, before X-Varnish, Age and Via: computed once. */
  deliverHeaders: string[] | undefined
  /** The backend's Content-Length, for delivering while the body still arrives. */
  contentLength: string | undefined
  etag: string | undefined
  lastModified: string | undefined
  // Made when the first reader follows a fetch: most objects (and every pass) never have one.
  #listeners: Set<BodyListener> | undefined
  #retain = true

  constructor(xid: number, hash: string) {
    this.xid = xid
    this.hash = hash
  }

  setHead(status: number, reason: string, headers: string[]): void {
    this.status = status
    this.reason = reason
    this.headers = headers
    this.etag = getHeader(headers, 'etag')
    this.lastModified = getHeader(headers, 'last-modified')
    let size = 0
    for (let i = 0; i < headers.length; i++) size += (headers[i] as string).length + 2
    this.size = size + 64
    this.state = 'streaming'
  }

  /**
   * Stops keeping the body: the object turned out larger than the store, so it is only
   * relayed to the clients already following it, and memory stays bounded however large it is.
   */
  dropBody(): void {
    this.#retain = false
    this.#chunks = []
  }

  append(chunk: Buffer): void {
    if (this.#retain) this.#chunks.push(chunk)
    this.received += chunk.length
    this.size += chunk.length
    if (this.#listeners !== undefined) for (const l of this.#listeners) l.data(chunk)
  }

  complete(): void {
    const chunks = this.#chunks
    this.body = chunks.length === 1 ? (chunks[0] as Buffer) : chunks.length === 0 ? EMPTY : Buffer.concat(chunks)
    this.#chunks = []
    this.state = 'complete'
    const listeners = this.#listeners
    this.#listeners = undefined
    if (listeners !== undefined) for (const l of listeners) l.end()
  }

  fail(): void {
    this.state = 'failed'
    this.#chunks = []
    const listeners = this.#listeners
    this.#listeners = undefined
    if (listeners !== undefined) for (const l of listeners) l.error()
  }

  /** Replays what arrived so far, then follows the fetch. Returns an unsubscribe function. */
  follow(listener: BodyListener): () => void {
    if (this.state === 'complete') {
      if (this.body && this.body.length > 0) listener.data(this.body)
      listener.end()
      return () => {}
    }
    if (this.state === 'failed') {
      listener.error()
      return () => {}
    }
    for (const c of this.#chunks) listener.data(c)
    this.#listeners ??= new Set()
    const listeners = this.#listeners
    listeners.add(listener)
    return () => listeners.delete(listener)
  }

  ageSeconds(nowMs: number): number {
    return Math.max(0, Math.floor((nowMs - this.tOrigin) / 1000))
  }

  /** Seconds of freshness left (varnish's ttl_left); negative once stale. */
  ttlLeft(nowMs: number): number {
    return this.ttl - (nowMs - this.tOrigin) / 1000
  }
}
