import { EdgeError } from '@edgestack/common'
import { loadVclFile, loadVclText } from './load.js'
import type { VclProgram } from './program.js'
import type { VclSource } from './source.js'

/** A vcl.* admin command that cannot be carried out (varnishadm answers it with status 106). */
export class VclAdminError extends EdgeError {
  /**
   * The CLI status varnishd answers with (106 CLIS_PARAM, 300 CLIS_CANT). The message is
   * varnishd's CLI body to the byte: some of mgt_vcl.c's end in a newline, some do not.
   */
  readonly cliStatus: number

  constructor(message: string, cliStatus = 106) {
    super('EDGE_ERR_VCL_ADMIN', message)
    this.cliStatus = cliStatus
  }
}

// varnishd runs vcl_init when a VCL is loaded and refuses the VCL when it returns fail.
function defaultWarm(p: VclProgram): void {
  const r = p.init()
  if (r.action !== 'ok') throw new VclAdminError(`VCL "${p.name}" Failed initialization`)
  p.startProbes()
}

interface Entry {
  readonly program: VclProgram
  busy: number
  discarded: boolean
}

/**
 * The loaded VCLs of one router, as varnishd keeps them for `vcl.load`, `vcl.use`, `vcl.list`,
 * `vcl.discard` and SIGHUP: requests `acquire()` the active VCL and keep it until `release()`,
 * so a switch never changes the VCL of a request in flight; a file that does not compile
 * never replaces anything. `warm` is called once per newly loaded program (run vcl_init, start
 * its probes); `cold` when a discarded program has no request left (stop its probes).
 */
export class VclRegistry {
  #entries = new Map<string, Entry>()
  // Every program still alive: loaded, or discarded while requests still hold it.
  #byProgram = new Map<VclProgram, Entry>()
  #active: Entry | undefined
  #reloads = 0
  #warm: (p: VclProgram) => void
  #cold: (p: VclProgram) => void
  readonly #onCold: ((p: VclProgram) => void)[] = []

  constructor(hooks: { warm?: (p: VclProgram) => void; cold?: (p: VclProgram) => void } = {}) {
    this.#warm = hooks.warm ?? defaultWarm
    this.#cold = hooks.cold ?? ((p) => p.stopProbes())
  }

  /**
   * `vcl.load NAME FILE` (or VCL text the command line stood for, `-b`): compile; on any error
   * nothing changes and the error propagates.
   */
  async load(name: string, from: string | VclSource): Promise<VclProgram> {
    if (this.#entries.has(name)) throw new VclAdminError(`Already a VCL named ${name}`)
    const program = typeof from === 'string' ? await loadVclFile(from, name) : await loadVclText(from, name)
    // Checked again: another load of the same name may have finished while this one compiled.
    if (this.#entries.has(name)) throw new VclAdminError(`Already a VCL named ${name}`)
    const entry: Entry = { program, busy: 0, discarded: false }
    this.#warm(program)
    this.#entries.set(name, entry)
    this.#byProgram.set(program, entry)
    return program
  }

  /** `vcl.use NAME`: new requests get this VCL; requests in flight keep theirs. */
  use(name: string): void {
    const e = this.#entries.get(name)
    if (!e) throw new VclAdminError(`No VCL named ${name} known\n`)
    this.#active = e
  }

  /** SIGHUP with `-f FILE`: load under a fresh name and use it, or keep the running VCL. */
  async reload(path: string): Promise<VclProgram> {
    const name = `reload_${++this.#reloads}`
    const program = await this.load(name, path)
    this.use(name)
    return program
  }

  /** `vcl.discard NAME`: forget it; its probes stop once its last request has finished. */
  discard(name: string): void {
    const e = this.#entries.get(name)
    if (!e) throw new VclAdminError(`No VCL name matches ${name}\n`)
    if (e === this.#active) throw new VclAdminError(`Cannot discard active VCL program ${name}\n`, 300)
    this.#entries.delete(name)
    e.discarded = true
    if (e.busy === 0) this.#retire(e)
  }

  get active(): VclProgram | undefined {
    return this.#active?.program
  }

  /** The active VCL for one request; pair with release() when the request is done. */
  acquire(): VclProgram {
    const e = this.#active
    if (!e) throw new VclAdminError('No active VCL')
    e.busy++
    return e.program
  }

  /** One more hold on a program a request already holds (an ESI include under its top request's VCL). */
  hold(program: VclProgram): VclProgram {
    const e = this.#byProgram.get(program)
    if (e) e.busy++
    return program
  }

  release(program: VclProgram): void {
    const e = this.#byProgram.get(program)
    if (!e || e.busy === 0) return
    e.busy--
    if (e.discarded && e.busy === 0) this.#retire(e)
  }

  /**
   * Also told when a program goes cold (a router closes that VCL's backend pools); the
   * function returned unsubscribes (a router sharing a manager's registry, when it closes).
   */
  onCold(listener: (p: VclProgram) => void): () => void {
    this.#onCold.push(listener)
    return () => {
      const i = this.#onCold.indexOf(listener)
      if (i !== -1) this.#onCold.splice(i, 1)
    }
  }

  #retire(e: Entry): void {
    this.#byProgram.delete(e.program)
    this.#cold(e.program)
    for (const listener of this.#onCold) listener(e.program)
  }

  /** `vcl.show NAME`: the main file's text; `verbose` adds the included files, as `-v` does. */
  show(name: string, verbose = false): string {
    const e = this.#entries.get(name)
    if (!e) throw new VclAdminError(`No VCL named '${name}'`)
    const sources = e.program.sources
    if (!verbose) return sources[0]?.text ?? ''
    return sources.map((s) => `// VCL.SHOW ${s.name}\n${s.text}`).join('\n')
  }

  /** `vcl.list` in varnishadm's layout: status, state/temperature, busy requests, name. */
  list(): string {
    // varnishd 7.1's table: the first column as wide as its longest entry plus three, then
    // state, temperature, busy count (six wide) and name four spaces apart; a newline each.
    const rows = [...this.#entries].map(([name, e]) => [e === this.#active ? 'active' : 'available', name, e.busy] as const)
    const width = Math.max(...rows.map(([status]) => status.length)) + 3
    let out = ''
    for (const [status, name, busy] of rows) out += `${status.padEnd(width)}auto    warm    ${String(busy).padStart(6)}    ${name}\n`
    return out
  }

  /** The loaded VCLs by name, the active one marked (backend.list, backend.set_health). */
  loaded(): Array<{ name: string; program: VclProgram; active: boolean; busy: number }> {
    return [...this.#entries].map(([name, e]) => ({ name, program: e.program, active: e === this.#active, busy: e.busy }))
  }

  /** Stops every VCL's probes (router shutdown). Idempotent. */
  close(): void {
    for (const e of this.#byProgram.values()) this.#cold(e.program)
    this.#entries.clear()
    this.#byProgram.clear()
    this.#active = undefined
  }
}
