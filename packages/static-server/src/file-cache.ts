import { type Stats, stat as statCallback } from 'node:fs'
import { open } from 'node:fs/promises'
import { promisify } from 'node:util'
import { gzip, type ZlibOptions } from 'node:zlib'

const gzipAsync = promisify(gzip) as (buf: Buffer, options: ZlibOptions) => Promise<Buffer>

export interface FileInfo {
  kind: 'file' | 'dir' | 'other'
  size: number
  mtimeMs: number
  ino: number
  /** The whole body when the file is small: answered with one `res.send`. */
  body?: Buffer
  /**
   * The last plain 200 answer formatted for this body (static-file.ts), valid while its key
   * holds. It lives and dies with this object, which a changed file replaces: it can never be
   * fresher or staler than `body`.
   */
  ready?: ReadyAnswer
  /** The body compressed by the gzip filter, per zlib settings: compressed once, not per request. */
  gzipped?: Map<string, Promise<Buffer>>
}

export interface ReadyAnswer {
  /** The location configuration, Content-Type, Date and Connection field it was formatted with. */
  conf: object
  type: string
  date: string
  connection: string
  wire: Buffer
}

export interface FileCacheOptions {
  /** open_file_cache_valid: how long a stat result is trusted; 0 re-stats on every request. */
  validMs: number
  /** Largest file kept in memory. */
  maxBodyBytes: number
  /** Most entries (open_file_cache max=). */
  maxEntries: number
  /** Most bytes of bodies held in memory at once. */
  maxTotalBodyBytes: number
}

interface Entry {
  info: FileInfo | undefined
  error: NodeJS.ErrnoException | undefined
  checkedAt: number
}

/**
 * The metadata and small-body cache behind open_file_cache. A body is reused only while the
 * file's size, mtime and inode are those it was read with, so an edited or replaced file is
 * served fresh from the next stat on; with open_file_cache_valid that stat happens at most once
 * per validity period, as nginx's cache does. Everything here is async: no sync fs on a request.
 */
export class FileCache {
  readonly #entries = new Map<string, Entry>()
  readonly #opts: FileCacheOptions
  #bodyBytes = 0
  /** Stats in flight: concurrent requests for one path share one system call. */
  readonly #inflight = new Map<string, Promise<Stats>>()

  constructor(opts: FileCacheOptions) {
    this.#opts = opts
  }

  /** Metadata of `path`, or the error (ENOENT, ENOTDIR, EACCES...) as nginx would see it. */
  async stat(path: string): Promise<FileInfo | NodeJS.ErrnoException> {
    const now = Date.now()
    const e = this.#entries.get(path)
    if (e && this.#opts.validMs > 0 && now - e.checkedAt < this.#opts.validMs) return e.info ?? (e.error as NodeJS.ErrnoException)
    let st: Stats
    try {
      st = await this.#stat(path)
    } catch (err) {
      const error = err as NodeJS.ErrnoException
      this.#put(path, { info: undefined, error, checkedAt: now })
      return error
    }
    const old = e?.info
    if (old && old.size === st.size && old.mtimeMs === st.mtimeMs && old.ino === st.ino) {
      e.checkedAt = now
      return old
    }
    const info = toInfo(st)
    this.#put(path, { info, error: undefined, checkedAt: now })
    return info
  }

  /** The body of a small file, read once and kept while its metadata holds. */
  async body(path: string, info: FileInfo): Promise<Buffer | undefined> {
    if (info.body) return info.body
    if (info.size > this.#opts.maxBodyBytes || this.#bodyBytes + info.size > this.#opts.maxTotalBodyBytes) return undefined
    const fh = await open(path, 'r')
    try {
      const st = await fh.stat()
      const buf = await fh.readFile()
      // Changed between stat and read: serve what we read, remember nothing.
      if (st.size !== info.size || st.mtimeMs !== info.mtimeMs || buf.length !== st.size) return buf
      // Another request may have read it meanwhile: count it once.
      if (!info.body) {
        info.body = buf
        this.#bodyBytes += buf.length
      }
      return info.body
    } finally {
      await fh.close()
    }
  }

  /**
   * `body` (this file's, held in memory) as the gzip filter compresses it with `options`. The
   * bytes are what compressing it afresh gives, so they are kept beside the body while there is
   * room: nginx compresses per request, we once per file version and settings.
   */
  gzipped(info: FileInfo, body: Buffer, options: ZlibOptions): Promise<Buffer> {
    const key = `${options.level}/${options.windowBits}/${options.memLevel}`
    let p = info.gzipped?.get(key)
    if (p) return p
    p = gzipAsync(body, options)
    if (info.body && this.#bodyBytes + info.size <= this.#opts.maxTotalBodyBytes) {
      info.gzipped ??= new Map()
      info.gzipped.set(key, p)
      p.then(
        (out) => {
          this.#bodyBytes += out.length
        },
        () => info.gzipped?.delete(key),
      )
    }
    return p
  }

  // The callback API: fs/promises' stat costs measurably more per call on this hot path.
  #stat(path: string): Promise<Stats> {
    let p = this.#inflight.get(path)
    if (!p) {
      p = new Promise<Stats>((resolve, reject) => {
        statCallback(path, (err, st) => {
          this.#inflight.delete(path)
          if (err) reject(err)
          else resolve(st)
        })
      })
      this.#inflight.set(path, p)
    }
    return p
  }

  #put(path: string, e: Entry): void {
    this.#drop(path)
    this.#entries.set(path, e)
    if (this.#entries.size > this.#opts.maxEntries) {
      const first = this.#entries.keys().next().value
      if (first !== undefined) this.#drop(first)
    }
  }

  #drop(path: string): void {
    const old = this.#entries.get(path)
    if (old?.info?.body) this.#bodyBytes -= old.info.body.length
    for (const p of old?.info?.gzipped?.values() ?? []) {
      p.then(
        (out) => {
          this.#bodyBytes -= out.length
        },
        () => {},
      )
    }
    this.#entries.delete(path)
  }
}

function toInfo(st: Stats): FileInfo {
  return {
    kind: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other',
    size: st.size,
    mtimeMs: st.mtimeMs,
    ino: st.ino,
  }
}
