import { type BoundedRegex, RegexCompileError } from '@edgestack/common'
import type { Acl } from './acl.js'
import { parseIp } from './acl.js'
import { type Expr, exprToken, type VclDialect } from './ast.js'
import type { VclContext, VclIp } from './context.js'
import type { Backend } from './directors.js'
import { Director } from './vdir-director.js'
import { directorsCall, objectCall, type VmodObject } from './vmod-directors.js'
import { stdCall } from './vmod-std.js'
import { xkeyCall } from './vmod-xkey.js'
import { spanOf, type Token } from './lexer.js'
import { compilePcre, compileReplacement, VARNISH_REGEX_LIMITS } from './regex.js'
import { VclError } from './source.js'
import { type Compiled, toBool, toStr, UNIT_SECONDS, type VclType } from './types.js'
import { lookupVariable, type VarSpec } from './variables.js'

/** What expression compilation needs from the program being compiled. */
export interface ExprEnv {
  readonly dialect: VclDialect
  /** The vcl_ method of the subroutine being compiled (for 3.0 renames), if it is one. */
  readonly method: string | undefined
  readonly backends: ReadonlyMap<string, Backend>
  readonly acls: ReadonlyMap<string, Acl>
  readonly objects: ReadonlyMap<string, VmodObject>
  readonly imports: ReadonlySet<string>
  /** Records a variable access, checked against each calling vcl_ method afterwards. */
  useVar(spec: VarSpec, token: Token, how: 'read' | 'write' | 'unset'): void
  markUsed(kind: 'backend' | 'acl' | 'probe', name: string): void
  /** Records a compiled pattern (compile.ts turns a risky one into a load-time warning). */
  noteRegex(re: BoundedRegex, token: Token): void
}

const NUMERIC = new Set<VclType>(['INT', 'REAL', 'DURATION', 'TIME'])
const isStringish = (t: VclType) => t === 'STRING' || t === 'HEADER'

export function compileExpr(e: Expr, env: ExprEnv, want?: VclType): Compiled {
  const c = compileRaw(e, env, want)
  return want ? coerce(c, want, e) : c
}

/** Converts to the wanted type where VCC converts implicitly, or fails like VCC. */
export function coerce(c: Compiled, want: VclType, e: Expr): Compiled {
  if (c.type === want) return c
  if (want === 'STRING' || want === 'BODY' || want === 'HEADER') {
    if (c.type === 'ACL' || c.type === 'VOID' || c.type === 'PROBE' || c.type === 'BLOB') return mismatch(c, want, e)
    const t = c.type
    const f = c.fn
    return isStringish(t) ? { type: 'STRING', fn: f } : { type: 'STRING', fn: (ctx) => toStr(t, f(ctx)) }
  }
  if (want === 'BOOL') {
    if (c.type === 'ACL' || c.type === 'VOID') return mismatch(c, want, e)
    const t = c.type
    const f = c.fn
    // toBool's cases, chosen once here rather than per evaluation.
    if (t === 'STRING' || t === 'HEADER') return { type: 'BOOL', fn: (ctx) => f(ctx) !== undefined }
    if (NUMERIC.has(t)) return { type: 'BOOL', fn: (ctx) => toBool(t, f(ctx)) }
    return { type: 'BOOL', fn: (ctx) => f(ctx) !== undefined }
  }
  if (want === 'REAL' && c.type === 'INT') return { ...c, type: 'REAL' }
  if (want === 'IP' && c.type === 'STRING' && typeof c.constant === 'string') {
    const ip = constantIp(c.constant)
    if (ip) return { type: 'IP', fn: () => ip, constant: ip }
  }
  return mismatch(c, want, e)
}

function mismatch(c: Compiled, want: VclType, e: Expr): never {
  throw new VclError(`Expression has type ${c.type}, expected ${want}`, spanOf(exprToken(e)))
}

export function constantIp(text: string): VclIp | undefined {
  const p = parseIp(text)
  return p ? { address: text, port: 0, family: p.family } : undefined
}

function literal(type: VclType, value: unknown): Compiled {
  return { type, fn: () => value, constant: value }
}


function compileRaw(e: Expr, env: ExprEnv, want?: VclType): Compiled {
  switch (e.kind) {
    case 'string':
      return literal('STRING', e.token.value)
    case 'number':
      return literal(e.token.value.includes('.') ? 'REAL' : 'INT', Number(e.token.value))
    case 'duration':
      return literal('DURATION', Number(e.token.value) * (UNIT_SECONDS[e.token.unit as string] as number))
    case 'ident':
      return ident(e.token, env, want)
    case 'call':
      return call(e, env)
    case 'unary': {
      if (e.token.value === '!') {
        const c = compileExpr(e.operand, env, 'BOOL')
        const f = c.fn
        return { type: 'BOOL', fn: (ctx) => !f(ctx) }
      }
      const c = compileExpr(e.operand, env)
      if (!NUMERIC.has(c.type)) throw new VclError(`Operator - not possible on ${c.type}`, spanOf(e.token))
      const f = c.fn
      return c.constant !== undefined ? literal(c.type, -(c.constant as number)) : { type: c.type, fn: (ctx) => -(f(ctx) as number) }
    }
    case 'binary':
      return binary(e, env)
  }
}

function ident(t: Token, env: ExprEnv, want?: VclType): Compiled {
  const name = t.value
  if (name === 'true' || name === 'false') return literal('BOOL', name === 'true')
  const spec = lookupVariable(name, env.dialect, env.method)
  if (spec) {
    env.useVar(spec, t, 'read')
    const get = spec.get
    return { type: spec.type === 'HEADER' ? 'STRING' : spec.type, fn: get }
  }
  const backend = env.backends.get(name)
  if (backend) {
    env.markUsed('backend', name)
    return literal('BACKEND', backend)
  }
  // varnish 3 directors are used like backends: `set req.backend = rr;`.
  const legacy = env.dialect === '3.0' ? env.objects.get(name) : undefined
  if (legacy instanceof Director) return literal('BACKEND', legacy)
  if (env.acls.has(name)) {
    env.markUsed('acl', name)
    return literal('ACL', env.acls.get(name))
  }
  if (name === 'default' && want === 'BACKEND') {
    const first = env.backends.values().next().value
    if (first) return literal('BACKEND', first)
  }
  if (want === 'BACKEND') throw new VclError(`Undefined backend ${name}, first reference:`, spanOf(t))
  if (want === 'ACL') throw new VclError(`Undefined acl ${name}, first reference:`, spanOf(t))
  throw new VclError(`Symbol not found: '${name}'`, spanOf(t))
}

function binary(e: Extract<Expr, { kind: 'binary' }>, env: ExprEnv): Compiled {
  const op = e.token.value
  if (op === '&&' || op === '||') return logical(e, op, env)
  const left = compileExpr(e.left, env)
  if (op === '~' || op === '!~') return match(e, left, env, op === '!~')
  const right = compileExpr(e.right, env, left.type === 'BACKEND' ? 'BACKEND' : undefined)
  if (op === '+' || op === '-' || op === '*' || op === '/') return arithmetic(e, left, right)
  const lt = isStringish(left.type) ? 'STRING' : left.type
  const rt = isStringish(right.type) ? 'STRING' : right.type
  if (lt !== rt) throw new VclError(`Comparison of different types: ${left.type} '${op}' ${right.type}`, spanOf(e.token))
  const l = left.fn
  const r = right.fn
  if ((op === '==' || op === '!=') && lt === 'STRING' && typeof right.constant === 'string') {
    // `req.method == "GET"`: the literal is compared directly, without a closure for it.
    const k = right.constant
    return { type: 'BOOL', fn: op === '==' ? (ctx) => l(ctx) === k : (ctx) => l(ctx) !== k }
  }
  if (op === '==' || op === '!=') {
    const eq =
      lt === 'IP'
        ? (ctx: VclContext) => sameIp(l(ctx) as VclIp | undefined, r(ctx) as VclIp | undefined)
        : (ctx: VclContext) => l(ctx) === r(ctx)
    return op === '==' ? { type: 'BOOL', fn: eq } : { type: 'BOOL', fn: (ctx) => !eq(ctx) }
  }
  if (!NUMERIC.has(lt)) throw new VclError(`Operator ${op} not possible on type ${left.type}`, spanOf(e.token))
  switch (op) {
    case '<':
      return { type: 'BOOL', fn: (ctx) => (l(ctx) as number) < (r(ctx) as number) }
    case '>':
      return { type: 'BOOL', fn: (ctx) => (l(ctx) as number) > (r(ctx) as number) }
    case '<=':
      return { type: 'BOOL', fn: (ctx) => (l(ctx) as number) <= (r(ctx) as number) }
    default:
      return { type: 'BOOL', fn: (ctx) => (l(ctx) as number) >= (r(ctx) as number) }
  }
}

/**
 * `a && b && c` (or `||`): the chain, which parses into nested pairs, runs as one list, so
 * builtin.vcl's eight-way method test is one call deep rather than eight.
 */
function logical(e: Extract<Expr, { kind: 'binary' }>, op: '&&' | '||', env: ExprEnv): Compiled {
  const terms: Expr[] = []
  const flatten = (x: Expr): void => {
    if (x.kind === 'binary' && x.token.value === op) {
      flatten(x.left)
      flatten(x.right)
    } else terms.push(x)
  }
  flatten(e)
  const fns = terms.map((t) => compileExpr(t, env, 'BOOL').fn)
  const [a, b] = fns as [(ctx: VclContext) => unknown, (ctx: VclContext) => unknown]
  if (op === '&&') {
    if (fns.length === 2) return { type: 'BOOL', fn: (ctx) => !!a(ctx) && !!b(ctx) }
    return {
      type: 'BOOL',
      fn: (ctx) => {
        for (const f of fns) if (!f(ctx)) return false
        return true
      },
    }
  }
  if (fns.length === 2) return { type: 'BOOL', fn: (ctx) => !!a(ctx) || !!b(ctx) }
  return {
    type: 'BOOL',
    fn: (ctx) => {
      for (const f of fns) if (f(ctx)) return true
      return false
    },
  }
}

function sameIp(a: VclIp | undefined, b: VclIp | undefined): boolean {
  if (!a || !b) return a === b
  const pa = parseIp(a.address)
  const pb = parseIp(b.address)
  return !!pa && !!pb && pa.family === pb.family && pa.value === pb.value
}

function match(e: Extract<Expr, { kind: 'binary' }>, left: Compiled, env: ExprEnv, negate: boolean): Compiled {
  const l = left.fn
  if (left.type === 'IP') {
    const right = compileExpr(e.right, env, 'ACL')
    const acl = right.constant as Acl
    return { type: 'BOOL', fn: negate ? (ctx) => !acl.match(l(ctx) as VclIp) : (ctx) => acl.match(l(ctx) as VclIp) }
  }
  if (!isStringish(left.type)) throw new VclError(`Operator ${e.token.value} not possible on type ${left.type}`, spanOf(e.token))
  const re = regexConstant(e.right, env)
  // varnish matches an unset header as the empty string (VRT_re_match). A match past the
  // limits throws RegexLimitError: the subroutine fails (program.ts), as VRT_fail does.
  return {
    type: 'BOOL',
    fn: negate
      ? (ctx) => !re.test((l(ctx) as string | undefined) ?? '', ctx.regexLimits ?? VARNISH_REGEX_LIMITS)
      : (ctx) => re.test((l(ctx) as string | undefined) ?? '', ctx.regexLimits ?? VARNISH_REGEX_LIMITS),
  }
}

/** A regex operand must be a literal, compiled once here (VCC compiles it into the VCL's C). */
function regexConstant(e: Expr, env: ExprEnv): BoundedRegex {
  const c = compileExpr(e, env)
  if (typeof c.constant !== 'string') {
    throw new VclError(`Expected constant string for a regular expression, got ${c.type}`, spanOf(exprToken(e)))
  }
  try {
    const re = compilePcre(c.constant)
    env.noteRegex(re, exprToken(e))
    return re
  } catch (err) {
    if (err instanceof RegexCompileError) throw new VclError(`Regexp compilation error:\n${err.message}`, spanOf(exprToken(e)))
    throw err
  }
}

function arithmetic(e: Extract<Expr, { kind: 'binary' }>, left: Compiled, right: Compiled): Compiled {
  const op = e.token.value
  const l = left.fn
  const r = right.fn
  if (op === '+' && (isStringish(left.type) || isStringish(right.type))) {
    const a = coerce(left, 'STRING', e.left).fn
    const b = coerce(right, 'STRING', e.right).fn
    return { type: 'STRING', fn: (ctx) => `${(a(ctx) as string | undefined) ?? ''}${(b(ctx) as string | undefined) ?? ''}` }
  }
  let type: VclType | undefined
  const lt = left.type
  const rt = right.type
  if ((op === '+' || op === '-') && lt === rt && (lt === 'INT' || lt === 'REAL' || lt === 'DURATION')) type = lt
  else if ((op === '+' || op === '-') && lt === 'TIME' && rt === 'DURATION') type = 'TIME'
  else if (op === '-' && lt === 'TIME' && rt === 'TIME') type = 'DURATION'
  else if ((op === '*' || op === '/') && (lt === 'INT' || lt === 'REAL') && (rt === 'INT' || rt === 'REAL')) type = lt === 'REAL' || rt === 'REAL' ? 'REAL' : 'INT'
  else if ((op === '*' || op === '/') && lt === 'DURATION' && (rt === 'INT' || rt === 'REAL')) type = 'DURATION'
  else if (op === '*' && (lt === 'INT' || lt === 'REAL') && rt === 'DURATION') type = 'DURATION'
  if (!type) throw new VclError(`${lt} ${op} ${rt} not possible.`, spanOf(e.token))
  switch (op) {
    case '+':
      return { type, fn: (ctx) => (l(ctx) as number) + (r(ctx) as number) }
    case '-':
      return { type, fn: (ctx) => (l(ctx) as number) - (r(ctx) as number) }
    case '*':
      return { type, fn: (ctx) => (l(ctx) as number) * (r(ctx) as number) }
    default:
      // INT / INT stays an integer in VCL (C division).
      return type === 'INT'
        ? { type, fn: (ctx) => Math.trunc((l(ctx) as number) / (r(ctx) as number)) }
        : { type, fn: (ctx) => (l(ctx) as number) / (r(ctx) as number) }
  }
}

export function arity(e: Extract<Expr, { kind: 'call' }>, min: number, max: number): void {
  const n = e.args.length + e.named.size
  if (n < min) throw new VclError(`Expected ',' got ')'`, spanOf(e.end))
  if (n > max) throw new VclError(`Expected ')' got ','`, spanOf(exprToken(e.args[max] ?? (e.args.at(-1) as Expr))))
}

export function arg(e: Extract<Expr, { kind: 'call' }>, i: number, name: string): Expr | undefined {
  return e.named.get(name) ?? e.args[i]
}

function call(e: Extract<Expr, { kind: 'call' }>, env: ExprEnv): Compiled {
  const name = e.token.value
  const need = (i: number, n: string, t: VclType) => compileExpr(arg(e, i, n) as Expr, env, t).fn
  if (name === 'regsub' || name === 'regsuball') {
    arity(e, 3, 3)
    const s = need(0, 'str', 'STRING')
    const re = regexConstant(e.args[1] as Expr, env)
    const all = name === 'regsuball'
    const sub = compileExpr(e.args[2] as Expr, env, 'STRING')
    const constSub = typeof sub.constant === 'string' ? compileReplacement(sub.constant) : undefined
    const subFn = sub.fn
    return {
      type: 'STRING',
      fn: (ctx) => {
        const input = (s(ctx) as string | undefined) ?? ''
        const rep = constSub ?? compileReplacement((subFn(ctx) as string | undefined) ?? '')
        return re.replace(input, ctx.regexLimits ?? VARNISH_REGEX_LIMITS, all, rep)
      },
    }
  }
  const dot = name.lastIndexOf('.')
  const prefix = dot === -1 ? '' : name.slice(0, dot)
  const member = name.slice(dot + 1)
  if (prefix === 'std' || prefix === 'directors' || prefix === 'xkey') {
    if (!env.imports.has(prefix)) throw new VclError(`Symbol not found: '${name}'`, spanOf(e.token))
  }
  if (prefix === 'std') return stdCall(e, member, env)
  const fromVmod = prefix === 'directors' ? directorsCall(e, member, env) : undefined
  if (fromVmod) return fromVmod
  if (prefix === 'xkey') return xkeyCall(e, member, env)
  const object = env.objects.get(prefix)
  if (object) return objectCall(e, object, member, env)
  // `req.http.host.lower()`: STRING methods (VCC's STRINGS.lower / STRINGS.upper).
  if ((member === 'lower' || member === 'upper') && prefix !== '') {
    arity(e, 0, 0)
    const target = compileExpr({ kind: 'ident', token: { ...e.token, value: prefix, length: prefix.length } }, env, 'STRING').fn
    return member === 'lower'
      ? { type: 'STRING', fn: (ctx) => ((target(ctx) as string | undefined) ?? '').toLowerCase() }
      : { type: 'STRING', fn: (ctx) => ((target(ctx) as string | undefined) ?? '').toUpperCase() }
  }
  throw new VclError(`Symbol not found: '${name}'`, spanOf(e.token))
}
