import { type Expr, exprToken } from './ast.js'
import { compileExpr, type ExprEnv } from './compile-expr.js'
import type { VclContext } from './context.js'
import { spanOf } from './lexer.js'
import { VclError } from './source.js'
import type { VclType } from './types.js'

type CallExpr = Extract<Expr, { kind: 'call' }>

/** One formal argument of a vmod function, as its .vcc file declares it. */
export interface ArgSpec {
  /** Empty for an argument the .vcc leaves unnamed (given by position only). */
  readonly name: string
  /** A VCL type, or the values of an ENUM. */
  readonly type: VclType | readonly string[]
  /** Required (no default and not `[optional]` in the .vcc). */
  readonly required?: boolean
}

/** A bound argument: undefined when not given; an ENUM's value is known at load. */
export type BoundArg = { readonly fn: (ctx: VclContext) => unknown; readonly constant?: unknown } | undefined

/**
 * Binds a call's positional and named arguments to `specs` the way VCC does (vcc_expr.c's
 * vcc_func_args): positions first, then names; the messages are VCC's.
 */
export function bindArgs(e: CallExpr, specs: readonly ArgSpec[], env: ExprEnv): BoundArg[] {
  if (e.args.length > specs.length) {
    const extra = exprToken(e.args[specs.length] as Expr)
    // VCC reads an identifier there as the name of an argument (`req` of `req.url`).
    if (extra.kind === 'id') {
      const first = extra.value.split('.')[0] as string
      throw new VclError(`Unknown argument '${first}'`, { ...spanOf(extra), length: first.length })
    }
    throw new VclError(`Expected ')' got '${exprText(e.args[specs.length] as Expr)}'`, spanOf(extra))
  }
  const given: (Expr | undefined)[] = specs.map((_, i) => e.args[i])
  for (const [name, value] of e.named) {
    const at = specs.findIndex((s) => s.name !== '' && s.name === name)
    const where = spanOf(e.names?.get(name) ?? value.token)
    if (at === -1) throw new VclError(`Unknown argument '${name}'`, where)
    if (given[at] !== undefined) throw new VclError(`Argument '${name}' already used`, where)
    given[at] = value
  }
  return specs.map((spec, i) => {
    const x = given[i]
    if (x === undefined) {
      if (spec.required) throw new VclError(spec.name === '' ? `Argument ${i + 1} missing` : `Argument '${spec.name}' missing`, spanOf(e.end))
      return undefined
    }
    if (typeof spec.type === 'string') {
      const c = compileExpr(x, env, spec.type)
      return { fn: c.fn, constant: c.constant }
    }
    if (x.kind !== 'ident') throw new VclError(`Expected ID got '${exprText(x)}'`, spanOf(exprToken(x)))
    const value = x.token.value
    if (!spec.type.includes(value)) {
      throw new VclError(`Wrong enum value.  Expected one of:\n${spec.type.map((v) => `\t${v}`).join('\n')}`, spanOf(x.token))
    }
    return { fn: () => value, constant: value }
  })
}

function exprText(e: Expr): string {
  const t = exprToken(e)
  return t.kind === 'string' ? `"${t.value}"` : t.value
}
