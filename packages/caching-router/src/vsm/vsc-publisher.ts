import type { Logger } from '@edgestack/common'
import type { Counters } from '../counters.js'
import { vbeCounters } from '../vbe-counters.js'
import type { Backend, VclRegistry } from '../vcl/index.js'
import { type VscSegment, VscWriter } from './vsc.js'
import { MAIN_DOC, SMA_DOC, VBE_DOC } from './vsc-fields.js'
import type { VsmSet } from './vsm.js'

/** varnishstat polls once a second; four writes a second keep it and `-expect` current. */
const FLUSH_MS = 250

/** What the serving side counts: its MAIN counters, its store, the backends of its VCLs. */
export interface CountedChild {
  readonly counters: Counters
  readonly store: { readonly bytes: number; readonly maxBytes: number }
  readonly vcl: VclRegistry
}

/**
 * The child's counters in its shared-memory set, as varnishd's child keeps them: `MAIN`, the
 * malloc store `SMA.s0`, and `VBE.VCL.BACKEND` for each backend of each loaded VCL (made
 * and removed as VCLs come and go, checked at each flush).
 */
export class ChildCounters {
  readonly #writer: VscWriter
  readonly #child: CountedChild
  readonly #backends = new Map<Backend, { ident: string; seg: Promise<VscSegment | undefined> }>()
  readonly #timer: NodeJS.Timeout
  #failed = false

  private constructor(set: VsmSet, child: CountedChild, logger: Logger) {
    this.#child = child
    this.#writer = new VscWriter(set, (err) => {
      // Once: a full disk later on must not flood the log, nor stop serving.
      if (!this.#failed) logger.warn(`shared memory: counters not written: ${err.message}`)
      this.#failed = true
    })
    this.#timer = setInterval(() => this.flush(), FLUSH_MS)
    this.#timer.unref()
  }

  static async start(set: VsmSet, child: CountedChild, logger: Logger): Promise<ChildCounters> {
    const self = new ChildCounters(set, child, logger)
    const c = child.counters
    const names = MAIN_DOC.fields.map((f) => f.name as keyof Counters)
    await self.#writer.add(MAIN_DOC, 'MAIN', () =>
      names.map((n) => (n === ('uptime' as keyof Counters) ? (Date.now() - c.uptime_start) / 1000 : (c[n] as number))),
    )
    const s = child.store
    await self.#writer.add(SMA_DOC, 'SMA.s0', () => [s.bytes, s.maxBytes - s.bytes])
    await self.#syncBackends()
    return self
  }

  /** The counters to the files now (also every FLUSH_MS). */
  flush(): void {
    void this.#syncBackends().catch(() => {})
    this.#writer.flush()
  }

  async close(): Promise<void> {
    clearInterval(this.#timer)
    this.#writer.flush()
    await this.#writer.close()
  }

  async #syncBackends(): Promise<void> {
    const seen = new Set<Backend>()
    const adding: Array<Promise<unknown>> = []
    for (const { name, program } of this.#child.vcl.loaded()) {
      for (const b of program.compiled.backends.values()) {
        seen.add(b)
        if (this.#backends.has(b)) continue
        const counters = vbeCounters(b)
        const ident = `VBE.${name}.${b.name}`
        const seg = this.#writer.add(VBE_DOC, ident, () => [counters.req, counters.fail]).catch(() => undefined)
        this.#backends.set(b, { ident, seg })
        adding.push(seg)
      }
    }
    await Promise.all(adding)
    for (const [b, { seg }] of this.#backends) {
      if (seen.has(b)) continue
      this.#backends.delete(b)
      const made = await seg
      if (made !== undefined) await this.#writer.remove(made)
    }
  }
}
