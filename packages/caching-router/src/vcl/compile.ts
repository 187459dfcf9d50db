import type { Acl } from './acl.js'
import type { Decl, Expr, Program, Stmt, SubDecl, VclDialect } from './ast.js'
import { BUILTIN_VCL } from './builtin.js'
import { compileAcl, compileBackend, compileLegacyDirector, compileProbe } from './compile-decls.js'
import { coerce, compileExpr, type ExprEnv } from './compile-expr.js'
import type { VclContext, VclReturn } from './context.js'
import type { Backend, ProbeOptions } from './directors.js'
import { newObject, type VmodObject } from './vmod-directors.js'
import { spanOf, type Token } from './lexer.js'
import { parseVcl } from './parser.js'
import { lineAndColumn, type Span, type VclSource, VclError } from './source.js'
import { ALL_METHODS, type Exec, LEGAL_RETURNS, RETURN_ACTIONS } from './types.js'

/**
 * What a bare `return;` gives: truthy, so the statements after it are skipped like after any
 * return, and turned back into "no action" where the subroutine ends (`leaving`), so the
 * caller carries on. It ends every concatenated body of the subroutine, as in varnishd.
 */
const LEAVE_SUB: VclReturn = Object.freeze({ action: '' })

/** A subroutine as callers run it; `holder.fn` is read at run time (later bodies append to it). */
function leaving(holder: { fn: Exec }): Exec {
  return (ctx) => {
    const r = holder.fn(ctx)
    return r === LEAVE_SUB ? undefined : r
  }
}
import { checkMethods, checkUnused, type SubInfo } from './xref.js'
import type { VarSpec } from './variables.js'
import { lookupVariable } from './variables.js'

/** The result of compiling: backends and directors to wire, and one closure per subroutine. */
export interface CompiledVcl {
  readonly dialect: VclDialect
  readonly backends: ReadonlyMap<string, Backend>
  readonly directors: ReadonlyMap<string, VmodObject>
  readonly acls: ReadonlyMap<string, Acl>
  /** The first backend declared: varnish's default `req.backend_hint`. */
  readonly defaultBackend: Backend | undefined
  readonly methods: ReadonlyMap<string, Exec>
  /**
   * The methods (`recv`, `backend_response`, ...) that run builtin.vcl's code alone: neither
   * `vcl_M` nor any subroutine it calls, however deep (`vcl_builtin_M`, `vcl_beresp_cookie`,
   * ...), has code from the user's files.
   */
  readonly builtinOnly: ReadonlySet<string>
  /**
   * `file:line:col: ...` for each pattern that runs on the counting engine because its shape
   * can backtrack super-linearly: a warning at load (the match is bounded either way).
   */
  readonly regexNotes: readonly string[]
}

// varnish 3 subroutine names that 4.0 renamed.
const RENAMED_SUBS: Record<string, string> = { vcl_fetch: 'vcl_backend_response', vcl_error: 'vcl_synth' }
// varnish 3 return actions and their 4.x meaning, per subroutine.
const RENAMED_RETURNS: Record<string, Record<string, string>> = {
  recv: { lookup: 'hash' },
  hash: { hash: 'lookup' },
  pass: { pass: 'fetch' },
  backend_response: { hit_for_pass: 'pass', restart: 'retry' },
}
const BUILTIN_SOURCE: VclSource = { name: '<builtin>', text: BUILTIN_VCL }
const BUILTIN_NAMES = new Set((BUILTIN_VCL.match(/^sub (vcl_\w+)/gm) ?? []).map((s) => s.slice(4)))
const IMPORTABLE = new Set(['std', 'directors', 'xkey'])

/** What was looked up before compiling: addresses of host names used in ACLs. */
export interface CompileOptions {
  readonly hosts?: ReadonlyMap<string, readonly string[]>
}

/** Compiles VCL text, or the tokens of a file with its includes expanded (see include.ts). */
export function compileVcl(source: VclSource | Token[], options: CompileOptions = {}): CompiledVcl {
  const user = parseVcl(source)
  // The AST is never modified by compiling, so the built-in VCL is parsed once per process.
  builtinProgram ??= parseVcl(BUILTIN_SOURCE)
  let compiled: CompiledVcl
  try {
    compiled = new Compiler(user, options.hosts ?? new Map()).run(builtinProgram)
  } catch (err) {
    // The parser bounds nesting; this catches what it cannot see (a chain of thousands of
    // subroutines calling the next): one line, never a stack trace.
    if (!(err instanceof RangeError) || !err.message.includes('call stack')) throw err
    throw new VclError('VCL program too deeply nested to compile (subroutine call chains or expressions)', startOf(source))
  }
  if (compiled.backends.size === 0) {
    // VCC's check (vcc_backend.c), after everything else compiled: an empty file, a file of
    // comments, `vcl 4.1;` alone or subroutines without a backend do not start varnishd.
    throw new VclError('No backends or directors found in VCL program, at least one is necessary.', startOf(source))
  }
  return compiled
}

let builtinProgram: Program | undefined

/** The first character of the user's file, for errors about the program as a whole. */
function startOf(source: VclSource | Token[]): Span {
  return { source: Array.isArray(source) ? (source[0] as Token).source : source, offset: 0, length: 1 }
}

class Compiler {
  #program: Program
  #backends = new Map<string, Backend>()
  #backendTokens = new Map<string, Token>()
  #probes = new Map<string, ProbeOptions>()
  #probeTokens = new Map<string, Token>()
  #acls = new Map<string, Acl>()
  #aclTokens = new Map<string, Token>()
  #directorTokens = new Map<string, Token>()
  #objects = new Map<string, VmodObject>()
  #imports = new Set<string>()
  #used = new Set<string>()
  readonly #regexNotes: string[] = []
  #subs = new Map<string, SubInfo>()
  #current: SubInfo | undefined
  #hosts: ReadonlyMap<string, readonly string[]>

  constructor(program: Program, hosts: ReadonlyMap<string, readonly string[]>) {
    this.#program = program
    this.#hosts = hosts
  }

  run(builtin: Program): CompiledVcl {
    const decls = this.#program.decls
    for (const d of decls) if (d.kind === 'import') this.#import(d.module)
    for (const d of decls) if (d.kind === 'probe') this.#declare(d.name, 'probe', this.#probeTokens)
    for (const d of decls) if (d.kind === 'probe') this.#probes.set(d.name.value, compileProbe(d.fields, d.keyword, this.#env()))
    for (const d of decls) if (d.kind === 'backend') this.#declare(d.name, 'backend', this.#backendTokens)
    for (const d of decls) if (d.kind === 'backend') this.#backends.set(d.name.value, compileBackend(d, this.#probes, this.#env()))
    for (const d of decls) {
      if (d.kind !== 'director') continue
      this.#declare(d.name, 'director', this.#directorTokens)
      const { director, inline } = compileLegacyDirector(d, this.#probes, this.#env())
      for (const b of inline) this.#backends.set(b.name, b)
      this.#objects.set(director.name, director)
    }
    for (const d of decls) {
      if (d.kind !== 'acl') continue
      this.#declare(d.name, 'acl', this.#aclTokens)
      this.#acls.set(d.name.value, compileAcl(d, this.#hosts))
    }
    const userSubs = new Set<string>()
    for (const s of decls) {
      if (!isSub(s)) continue
      const name = s.name.value
      userSubs.add(this.#program.dialect === '3.0' ? (RENAMED_SUBS[name] ?? name) : name)
    }
    const subs: SubDecl[] = [...decls.filter(isSub), ...builtin.decls.filter(isSub)]
    for (const s of subs) this.#registerSub(s)
    this.#declareObjects(subs)
    for (const s of subs) this.#compileSub(s)
    checkMethods(this.#subs, this.#used)
    checkUnused(this.#subs, this.#used, { backend: this.#backendTokens, probe: this.#probeTokens, acl: this.#aclTokens })
    const methods = new Map<string, Exec>()
    const builtinOnly = new Set<string>()
    for (const m of ALL_METHODS) {
      const info = this.#subs.get(`vcl_${m}`)
      if (info) methods.set(m, leaving(info.holder))
      if (!this.#reachesAny(`vcl_${m}`, userSubs)) builtinOnly.add(m)
    }
    const first = this.#backends.values().next().value
    return {
      dialect: this.#program.dialect,
      backends: this.#backends,
      directors: this.#objects,
      acls: this.#acls,
      defaultBackend: first,
      methods,
      builtinOnly,
      regexNotes: this.#regexNotes,
    }
  }

  /** Whether sub `from` is one of `names` or calls one of them, directly or through others. */
  #reachesAny(from: string, names: ReadonlySet<string>): boolean {
    const seen = new Set<string>()
    const todo = [from]
    for (let name = todo.pop(); name !== undefined; name = todo.pop()) {
      if (names.has(name)) return true
      if (seen.has(name)) continue
      seen.add(name)
      for (const c of this.#subs.get(name)?.calls ?? []) todo.push(c.name)
    }
    return false
  }

  #import(module: Token): void {
    if (!IMPORTABLE.has(module.value)) {
      throw new VclError(`Could not find VMOD ${module.value}\n(caching-router provides std, directors and xkey)`, spanOf(module))
    }
    this.#imports.add(module.value)
  }

  #declare(name: Token, kind: string, tokens: Map<string, Token>): void {
    const all = [this.#backendTokens, this.#probeTokens, this.#aclTokens, this.#directorTokens]
    for (const map of all) {
      const first = map.get(name.value)
      if (first) {
        const label = kind[0]?.toUpperCase() + kind.slice(1)
        throw new VclError(`${label} '${name.value}' redefined.`, spanOf(name), { note: 'First definition:', span: spanOf(first) })
      }
    }
    tokens.set(name.value, name)
  }

  #env(): ExprEnv {
    const current = this.#current
    return {
      dialect: this.#program.dialect,
      method: current?.method,
      backends: this.#backends,
      acls: this.#acls,
      objects: this.#objects,
      imports: this.#imports,
      useVar: (spec, token, how) => this.#useVar(spec, token, how),
      markUsed: (kind, name) => this.#used.add(`${kind}:${name}`),
      noteRegex: (re, token) => {
        if (re.risk === undefined || token.source.name === '<builtin>') return
        const { line, column } = lineAndColumn(spanOf(token))
        this.#regexNotes.push(
          `${token.source.name}:${line}:${column}: regex "${re.pattern}" can backtrack super-linearly (${re.risk}); each match stops at pcre2_match_limit`,
        )
      },
    }
  }

  #useVar(spec: VarSpec, token: Token, how: 'read' | 'write' | 'unset'): void {
    const sub = this.#current
    if (!sub) return
    if (how === 'read') {
      sub.uses.push({ token, allowed: spec.read, problem: (m) => `Not available in subroutine 'vcl_${m}'.` })
    } else if (how === 'write') {
      if (spec.write.length === 0 || !spec.set) throw new VclError('Variable is read only.', spanOf(token))
      sub.uses.push({ token, allowed: spec.write, problem: (m) => `Cannot be set in subroutine 'vcl_${m}'.` })
    } else {
      if (spec.unset.length === 0 || !spec.clear) throw new VclError('Variable cannot be unset.', spanOf(token))
      sub.uses.push({ token, allowed: spec.unset, problem: (m) => `Cannot be unset in subroutine 'vcl_${m}'.` })
    }
  }

  #registerSub(s: SubDecl): void {
    let name = s.name.value
    if (this.#program.dialect === '3.0') name = RENAMED_SUBS[name] ?? name
    const existing = this.#subs.get(name)
    if (existing) {
      // varnish concatenates repeated vcl_* subroutines (the built-in ones come last).
      if (!name.startsWith('vcl_')) {
        throw new VclError(`Subroutine '${name}' redefined`, spanOf(s.name), { note: 'First definition:', span: spanOf(existing.tokens[0] as Token) })
      }
      existing.tokens.push(s.name)
      return
    }
    let method: string | undefined
    if (name.startsWith('vcl_')) {
      method = name.slice(4)
      if (!(ALL_METHODS as readonly string[]).includes(method)) {
        if (!BUILTIN_NAMES.has(name)) {
          throw new VclError(`The names 'vcl_*' are reserved for subroutines.\nValid vcl_* subroutines are:\n${[...BUILTIN_NAMES].map((n) => `\t${n}`).join('\n')}`, spanOf(s.name))
        }
        method = undefined
      }
    }
    const info: SubInfo = { name, tokens: [s.name], method, uses: [], calls: [], holder: { fn: () => undefined } }
    this.#subs.set(name, info)
  }

  #declareObjects(subs: SubDecl[]): void {
    for (const s of subs) {
      if (s.name.value !== 'vcl_init') continue
      for (const st of s.body) {
        if (st.kind !== 'new') continue
        const ctor = st.ctor
        if (ctor.kind !== 'call' || !ctor.token.value.startsWith('directors.')) {
          throw new VclError('Expected a directors.*() constructor', spanOf(st.keyword))
        }
        if (!this.#imports.has('directors')) throw new VclError(`Symbol not found: '${ctor.token.value}'`, spanOf(ctor.token))
        const kind = ctor.token.value.slice('directors.'.length)
        if (this.#objects.has(st.name.value) || this.#backends.has(st.name.value)) {
          throw new VclError(`Object name '${st.name.value}' already used.`, spanOf(st.name))
        }
        const object = newObject(st.name.value, ctor, kind, this.#env())
        if (!object) throw new VclError(`Symbol not found: '${ctor.token.value}'`, spanOf(ctor.token))
        this.#objects.set(st.name.value, object)
      }
    }
  }

  #compileSub(s: SubDecl): void {
    let name = s.name.value
    if (this.#program.dialect === '3.0') name = RENAMED_SUBS[name] ?? name
    const info = this.#subs.get(name) as SubInfo
    this.#current = info
    const body = this.#block(s.body)
    this.#current = undefined
    const previous = info.holder.fn
    const isFirst = info.tokens[0] === s.name
    // Concatenated bodies run in order; a return in an earlier body ends the subroutine.
    info.holder.fn = isFirst ? body : (ctx) => previous(ctx) ?? body(ctx)
  }

  #block(stmts: Stmt[]): Exec {
    const execs = stmts.map((s) => this.#stmt(s))
    if (execs.length === 0) return () => undefined
    if (execs.length === 1) return execs[0] as Exec
    // A statement returns undefined (carry on) or a VclReturn object, so `||` is "first return".
    const [a, b, c] = execs as [Exec, Exec, Exec]
    if (execs.length === 2) return (ctx) => a(ctx) || b(ctx)
    if (execs.length === 3) return (ctx) => a(ctx) || b(ctx) || c(ctx)
    return (ctx) => {
      for (const e of execs) {
        const r = e(ctx)
        if (r) return r
      }
      return undefined
    }
  }

  #stmt(s: Stmt): Exec {
    const env = this.#env()
    const sub = this.#current as SubInfo
    switch (s.kind) {
      case 'if': {
        const branches = s.branches.map((b) => ({ cond: compileExpr(b.cond, env, 'BOOL').fn, body: this.#block(b.body) }))
        const otherwise = s.otherwise ? this.#block(s.otherwise) : undefined
        if (branches.length === 1) {
          const { cond, body } = branches[0] as (typeof branches)[0]
          if (otherwise === undefined) return (ctx) => (cond(ctx) ? body(ctx) : undefined)
          return (ctx) => (cond(ctx) ? body(ctx) : otherwise(ctx))
        }
        return (ctx) => {
          for (const b of branches) if (b.cond(ctx)) return b.body(ctx)
          return otherwise?.(ctx)
        }
      }
      case 'set':
        return this.#set(s, env)
      case 'unset': {
        const spec = lookupVariable(s.target.value, env.dialect, env.method)
        if (!spec) throw new VclError(`Symbol not found: '${s.target.value}'`, spanOf(s.target))
        this.#useVar(spec, s.target, 'unset')
        const clear = spec.clear as (ctx: VclContext) => void
        return (ctx) => {
          clear(ctx)
          return undefined
        }
      }
      case 'return':
        if (s.action === undefined) return () => LEAVE_SUB
        return this.#return(s.action, s.args, env)
      case 'error': {
        // varnish 3's `error` in vcl_fetch became return (error(...)) on the backend side.
        const backendSide = sub.method?.startsWith('backend_') ?? false
        const action = { ...s.keyword, value: backendSide ? 'error' : 'synth' }
        const args = s.args.length === 0 ? [{ kind: 'number' as const, token: { ...s.keyword, kind: 'number' as const, value: '503' } }] : s.args
        return this.#return(action, args, env)
      }
      case 'call': {
        sub.calls.push({ name: s.name.value, token: s.name })
        const target = this.#subs.get(s.name.value)
        if (!target) throw new VclError(`Undefined sub ${s.name.value}, first reference:`, spanOf(s.name))
        return leaving(target.holder)
      }
      case 'action':
        return this.#action(s.keyword, s.args, env)
      case 'new':
        this.#restrict(s.keyword, ['init'], (m) => `Not a valid action in subroutine 'vcl_${m}'.`)
        return () => undefined
      case 'expr': {
        if (s.expr.kind !== 'call') throw new VclError('Expected an action, \'if\', \'{\' or \'}\'', spanOf(s.expr.token))
        const f = compileExpr(s.expr, env).fn
        return (ctx) => {
          f(ctx)
          return undefined
        }
      }
    }
  }

  #restrict(token: Token, allowed: readonly string[], problem: (m: string) => string): void {
    this.#current?.uses.push({ token, allowed, problem })
  }

  #set(s: Extract<Stmt, { kind: 'set' }>, env: ExprEnv): Exec {
    const spec = lookupVariable(s.target.value, env.dialect, env.method)
    if (!spec) throw new VclError(`Symbol not found: '${s.target.value}'`, spanOf(s.target))
    this.#useVar(spec, s.target, 'write')
    const refusal = spec.unsupported
    if (refusal && !(refusal.exceptLiteral !== undefined && s.value.kind === 'ident' && s.value.token.value === refusal.exceptLiteral)) {
      throw new VclError(`${spec.name}: ${refusal.why}.`, spanOf(s.target))
    }
    const want = spec.type === 'HEADER' || spec.type === 'BODY' ? 'STRING' : spec.type
    const value = compileExpr(s.value, env, want)
    const set = spec.set as (ctx: VclContext, v: unknown) => void
    const get = spec.get
    const v = value.fn
    const op = s.op.value
    if (op === '=') {
      return (ctx) => {
        // Setting a header from an unset one sets it empty, as varnish does.
        set(ctx, want === 'STRING' ? ((v(ctx) as string | undefined) ?? '') : v(ctx))
        return undefined
      }
    }
    if (want === 'STRING' && op === '+=') {
      return (ctx) => {
        set(ctx, `${(get(ctx) as string | undefined) ?? ''}${(v(ctx) as string | undefined) ?? ''}`)
        return undefined
      }
    }
    if (want !== 'INT' && want !== 'REAL' && want !== 'DURATION') {
      throw new VclError(`Operator ${op} not possible on type ${spec.type}.`, spanOf(s.op))
    }
    const apply: Record<string, (a: number, b: number) => number> = {
      '+=': (a, b) => a + b,
      '-=': (a, b) => a - b,
      '*=': (a, b) => a * b,
      '/=': (a, b) => (want === 'INT' ? Math.trunc(a / b) : a / b),
    }
    const f = apply[op] as (a: number, b: number) => number
    return (ctx) => {
      set(ctx, f(get(ctx) as number, v(ctx) as number))
      return undefined
    }
  }

  #return(actionToken: Token, args: Expr[], env: ExprEnv): Exec {
    const sub = this.#current as SubInfo
    let action = actionToken.value
    if (env.dialect === '3.0' && sub.method) action = RENAMED_RETURNS[sub.method]?.[action] ?? action
    if (!RETURN_ACTIONS.has(action)) throw new VclError('Expected return action name.', spanOf(actionToken))
    sub.uses.push({
      token: actionToken,
      allowed: Object.keys(LEGAL_RETURNS).filter((m) => LEGAL_RETURNS[m]?.includes(action)),
      problem: () => `Invalid return "${action}"`,
      legal: true,
    })
    if (action === 'vcl') throw new VclError('return (vcl(...)) labels are not supported by caching-router', spanOf(actionToken))
    if (action === 'synth' || action === 'error') {
      if (args.length === 0 && action === 'synth') throw new VclError("Expected '(' got ')'", spanOf(actionToken))
      if (args.length > 2) throw new VclError("Expected ')' got ','", spanOf(actionToken))
      const status = args[0] ? compileExpr(args[0], env, 'INT').fn : () => 503
      const reason = args[1] ? compileExpr(args[1], env, 'STRING').fn : undefined
      return (ctx) => {
        const r = reason?.(ctx) as string | undefined
        return r === undefined ? { action, status: status(ctx) as number } : { action, status: status(ctx) as number, reason: r }
      }
    }
    if (action === 'pass' && args.length > 0) {
      const ttl = compileExpr(args[0] as Expr, env, 'DURATION').fn
      return (ctx) => ({ action, ttl: ttl(ctx) as number })
    }
    if (args.length > 0) throw new VclError(`Expected ')' got '('`, spanOf(actionToken))
    const result: VclReturn = Object.freeze({ action })
    return () => result
  }

  #action(keyword: Token, args: Expr[], env: ExprEnv): Exec {
    const name = keyword.value
    const notValid = (m: string) => `Not a valid action in subroutine 'vcl_${m}'.`
    if (name === 'purge') {
      this.#restrict(keyword, ['hit', 'miss'], notValid)
      return (ctx) => {
        ctx.purge?.()
        return undefined
      }
    }
    if (args.length !== 1) throw new VclError(`Expected one argument to ${name}()`, spanOf(keyword))
    const c = coerce(compileExpr(args[0] as Expr, env), 'STRING', args[0] as Expr)
    const f = c.fn
    if (name === 'hash_data') {
      this.#restrict(keyword, ['hash'], notValid)
      return (ctx) => {
        ctx.hashData((f(ctx) as string | undefined) ?? '')
        return undefined
      }
    }
    if (name === 'synthetic') {
      this.#restrict(keyword, ['synth', 'backend_error'], notValid)
      return (ctx) => {
        const text = (f(ctx) as string | undefined) ?? ''
        if (ctx.resp) ctx.resp.body = text
        else if (ctx.beresp) ctx.beresp.body = text
        return undefined
      }
    }
    const prefix = name === 'ban_url' ? 'req.url ~ ' : ''
    return (ctx) => {
      const err = ctx.ban(`${prefix}${(f(ctx) as string | undefined) ?? ''}`)
      if (err) ctx.log(`ban(): ${err}`)
      return undefined
    }
  }
}

function isSub(d: Decl): d is SubDecl {
  return d.kind === 'sub'
}

