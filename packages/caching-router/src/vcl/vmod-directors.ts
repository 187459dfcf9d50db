import type { Expr } from './ast.js'
import { arg, arity, compileExpr, type ExprEnv } from './compile-expr.js'
import type { VclBackendRef } from './context.js'
import type { Director } from './directors.js'
import { spanOf } from './lexer.js'
import { VclError } from './source.js'
import type { Compiled, VclType } from './types.js'

/** Methods of the directors vmod's objects (`rr.add_backend(b)`, `rr.backend()`, `h.backend(key)`). */
export function objectCall(e: Extract<Expr, { kind: 'call' }>, d: Director, member: string, env: ExprEnv): Compiled {
  const need = (i: number, n: string, t: VclType) => compileExpr(arg(e, i, n) as Expr, env, t).fn
  if (member === 'add_backend') {
    const weighted = d.kind === 'random' || d.kind === 'hash'
    arity(e, weighted ? 2 : 1, 2)
    const b = need(0, 'backend', 'BACKEND')
    const w = arg(e, 1, 'weight') ? need(1, 'weight', 'REAL') : () => 1
    return { type: 'VOID', fn: (ctx) => d.addBackend(b(ctx) as VclBackendRef, w(ctx) as number) }
  }
  if (member === 'remove_backend') {
    arity(e, 1, 1)
    const b = need(0, 'backend', 'BACKEND')
    return { type: 'VOID', fn: (ctx) => d.removeBackend(b(ctx) as VclBackendRef) }
  }
  if (member === 'backend') {
    if (d.kind === 'hash') {
      arity(e, 1, 1)
      const k = need(0, 'key', 'STRING')
      return { type: 'BACKEND', fn: (ctx) => d.backend((k(ctx) as string | undefined) ?? '') }
    }
    arity(e, 0, 0)
    return { type: 'BACKEND', fn: () => d, constant: d }
  }
  throw new VclError(`Symbol not found: '${e.token.value}'`, spanOf(e.token))
}
