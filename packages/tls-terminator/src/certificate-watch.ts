import { type FSWatcher, watch } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import type { TerminatorModel } from './config/model.js'

/**
 * How long the files must stay quiet before a reload: an ACME client or `cp` writes a
 * certificate and its key as two files (and a copy as several writes); reading between the two
 * would load a mismatched pair, be refused, and count a failure that fixes itself a moment later.
 */
export const CERTIFICATE_SETTLE_MS = 500

/**
 * Kubernetes mounts a Secret as symlinks through `..data`, which it swaps with one rename: the
 * certificate's own name never appears in that directory's events.
 */
const KUBERNETES_SWAP = '..data'

/** Every file a reload of `model` reads that holds certificate material. */
export function certificateFiles(model: TerminatorModel): string[] {
  const files = new Set<string>()
  for (const l of model.listeners) {
    for (const s of [l.service, ...l.virtualHosts.map((v) => v.service)]) {
      for (const f of [s.cert, s.key, s.clientCerts.caFile, s.clientCerts.crlFile]) if (f) files.add(resolve(f))
    }
  }
  return [...files]
}

/**
 * Calls `onChange` once the certificate files of the running configuration change and then
 * settle. The directories are watched, not the files: a replacement by rename (the atomic way,
 * and what `tls-terminator acme`, certbot and Kubernetes do) gives the name a new inode, and a
 * watch on the old inode would never fire again. `update` follows a reload that names other files.
 */
export class CertificateWatch {
  readonly #onChange: () => void
  readonly #onError: (err: Error) => void
  readonly #settleMs: number
  #watchers = new Map<string, FSWatcher>()
  #names = new Map<string, Set<string>>()
  #timer: NodeJS.Timeout | undefined

  constructor(opts: { onChange(): void; onError(err: Error): void; settleMs?: number }) {
    this.#onChange = opts.onChange
    this.#onError = opts.onError
    this.#settleMs = opts.settleMs ?? CERTIFICATE_SETTLE_MS
  }

  update(files: readonly string[]): void {
    const names = new Map<string, Set<string>>()
    for (const f of files) {
      const dir = dirname(f)
      const set = names.get(dir) ?? new Set([KUBERNETES_SWAP])
      set.add(basename(f))
      names.set(dir, set)
    }
    for (const [dir, w] of this.#watchers) {
      if (names.has(dir)) continue
      w.close()
      this.#watchers.delete(dir)
    }
    this.#names = names
    for (const dir of names.keys()) {
      if (this.#watchers.has(dir)) continue
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || this.#names.get(dir)?.has(name)) this.#changed()
        })
        w.on('error', (err) => this.#onError(err))
        this.#watchers.set(dir, w)
      } catch (err) {
        // A directory that cannot be watched (gone, inotify limit) still reloads on SIGHUP.
        this.#onError(err as Error)
      }
    }
  }

  close(): void {
    clearTimeout(this.#timer)
    for (const w of this.#watchers.values()) w.close()
    this.#watchers.clear()
  }

  #changed(): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.#onChange(), this.#settleMs)
    this.#timer.unref()
  }
}
