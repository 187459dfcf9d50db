import { RegexLimitError } from '@edgestack/common'
import { type CompileOptions, compileVcl } from './compile.js'
import type { VclContext, VclMethod, VclReturn } from './context.js'
import { ProbeRunner, type ProbeResult } from './probe.js'
import { ShardDirector } from './shard-director.js'
import { createRequestContext, type RequestInit } from './request-context.js'
import type { Token } from './lexer.js'
import type { Exec } from './types.js'
import type { VclSource } from './source.js'
import { VclRuntimeError } from './variables.js'

const FAIL: VclReturn = Object.freeze({ action: 'fail' })

const DEFAULT_RETURN: Readonly<Record<VclMethod, string>> = {
  recv: 'hash',
  pipe: 'pipe',
  pass: 'fetch',
  hash: 'lookup',
  purge: 'synth',
  hit: 'deliver',
  miss: 'fetch',
  deliver: 'deliver',
  synth: 'deliver',
  backend_fetch: 'fetch',
  backend_response: 'deliver',
  backend_error: 'deliver',
  init: 'ok',
  fini: 'ok',
}

const NOWHERE = Object.freeze({ address: '0.0.0.0', port: 0, family: 4 as const })

// vcl_init and vcl_fini run without a request; the checker allows them only `now` and objects.
function housekeepingContext(): VclContext {
  return createRequestContext({ method: 'GET', url: '/', proto: 'HTTP/1.1', headers: [], client: NOWHERE, local: NOWHERE, xid: '0' })
}

/**
 * A loaded VCL: compiled once, then run per request step. Several may be loaded at once
 * (vcl.load / vcl.use); a request keeps the VclProgram it started with.
 */
export class VclProgram {
  readonly name: string
  readonly compiled: ReturnType<typeof compileVcl>
  /** The files the VCL was read from, main file first (for `vcl.show`). */
  readonly sources: readonly VclSource[]
  #probes: ProbeRunner[] = []
  /** Methods whose code is builtin.vcl's only (see `isBuiltinOnly`). */
  readonly #builtinOnly: ReadonlySet<VclMethod>
  /** compiled.methods as a frozen record: a property load per run rather than a Map lookup. */
  readonly #methods: Readonly<Partial<Record<string, Exec>>>

  constructor(name: string, source: VclSource | Token[], options: CompileOptions = {}) {
    this.name = name
    this.compiled = compileVcl(source, options)
    this.sources = Array.isArray(source) ? [...new Set(source.map((t) => t.source))] : [source]
    this.#builtinOnly = this.compiled.builtinOnly as ReadonlySet<VclMethod>
    this.#methods = Object.freeze(Object.fromEntries(this.compiled.methods))
  }

  /**
   * Whether `method` runs builtin.vcl's code alone (no code of the user's is reached from it):
   * the router may then skip running it, or do what builtin.vcl does natively, on the hot path.
   */
  isBuiltinOnly(method: VclMethod): boolean {
    return this.#builtinOnly.has(method)
  }

  /**
   * What `caching-router -C` prints where `varnishd -C` prints the generated C: what the file
   * compiled into.
   */
  describe(): string {
    const c = this.compiled
    const lines = [`// VCL ${c.dialect} from ${this.sources.map((s) => s.name).join(', ')}`]
    for (const b of c.backends.values()) {
      const probe = b.probe ? ` probe ${b.probe.request ? 'request' : b.probe.url} every ${b.probe.interval}s` : ''
      lines.push(`backend ${b.name} ${b.path ?? `${b.host}:${b.port}`}${b === c.defaultBackend ? ' (default)' : ''}${probe}`)
    }
    for (const d of c.directors.values()) lines.push(`director ${d.name} ${d.kind}`)
    for (const a of c.acls.values()) lines.push(`acl ${a.name}`)
    lines.push(`subroutines ${[...c.methods.keys()].map((m) => `vcl_${m}`).join(' ')}`)
    for (const note of c.regexNotes) lines.push(`warning: ${note}`)
    return lines.join('\n')
  }

  /**
   * Runs one subroutine (user code, then the built-in VCL) and returns its action. A run-time
   * failure (a value refused by a setter) is logged and returns `fail`, never throws: varnish
   * turns VCL failures into a 503 for that one request.
   */
  run(method: VclMethod, ctx: VclContext): VclReturn {
    const fn = this.#methods[method]
    ctx.method = method
    try {
      const ret = fn?.(ctx) ?? { action: DEFAULT_RETURN[method] }
      ctx.vsl?.call(method, ret.action)
      return ret
    } catch (err) {
      // A refused value (VclRuntimeError) or, should one slip through, a compiler bug: either
      // way only this request fails.
      // varnishd's VCL_Error for a match past pcre2_match_limit: "Regexp matching failed: match limit exceeded".
      const text =
        err instanceof VclRuntimeError ? err.message
        : err instanceof RegexLimitError ? `Regexp matching failed: ${err.message}`
        : `internal error: ${String(err)}`
      ctx.log(`vcl_${method}: ${text}`)
      ctx.vsl?.vclError(text)
      ctx.vsl?.call(method, 'fail')
      return FAIL
    }
  }

  /** A context for a new client request, with req.backend_hint preset to the default backend. */
  newRequest(init: RequestInit): VclContext {
    return createRequestContext(init, this.compiled.defaultBackend)
  }

  /**
   * vcl_init: builds the directors' member lists. `ctx` is only used for `now` and logging, as
   * in varnish where vcl_init has no request. A `fail` return means the VCL must not be used.
   */
  init(ctx: VclContext = housekeepingContext()): VclReturn {
    const ret = this.run('init', ctx)
    this.endTask(ctx)
    return ret
  }

  /**
   * The end of a task (vcl_init, or a request and its backend side): shard directors apply the
   * changes it queued and did not `.reconfigure()` (shard_change_fini).
   */
  endTask(ctx: VclContext): void {
    for (const d of this.compiled.directors.values()) if (d instanceof ShardDirector) d.endTask(ctx, ctx.log)
  }

  /** Starts the health checks of every backend with a `.probe` (varnish: when the VCL goes warm). */
  startProbes(onResult?: (r: ProbeResult) => void): void {
    if (this.#probes.length > 0) return
    for (const b of this.compiled.backends.values()) {
      if (!b.probe) continue
      const runner = new ProbeRunner(b, b.probe, onResult)
      this.#probes.push(runner)
      runner.start()
    }
  }

  /** Stops the health checks (varnish: the VCL goes cold). Idempotent. */
  stopProbes(): void {
    for (const p of this.#probes) p.stop()
    this.#probes = []
  }
}
