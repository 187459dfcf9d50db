import type { Expr } from './ast.js'
import { arity, compileExpr, type ExprEnv } from './compile-expr.js'
import { spanOf } from './lexer.js'
import { VclError } from './source.js'
import type { Compiled } from './types.js'

type CallExpr = Extract<Expr, { kind: 'call' }>

/**
 * varnish-modules' vmod_xkey: `xkey.purge(STRING keys)` removes the objects carrying any of
 * the keys, `xkey.softpurge(STRING keys)` expires them now and leaves grace and keep; both
 * return how many objects they reached (INT). Keys are separated by spaces or commas.
 */
export function xkeyCall(e: CallExpr, member: string, env: ExprEnv): Compiled {
  if (member !== 'purge' && member !== 'softpurge') throw new VclError(`Symbol not found: 'xkey.${member}'`, spanOf(e.token))
  arity(e, 1, 1)
  const keys = compileExpr(e.args[0] as Expr, env, 'STRING').fn
  const soft = member === 'softpurge'
  return { type: 'INT', fn: (ctx) => ctx.xkeyPurge?.((keys(ctx) as string | undefined) ?? '', soft) ?? 0 }
}
