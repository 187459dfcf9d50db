import { parseIp } from './acl.js'
import type { Expr } from './ast.js'
import { arg, arity, compileExpr, type ExprEnv } from './compile-expr.js'
import type { VclBackendRef, VclContext, VclIp } from './context.js'
import { spanOf } from './lexer.js'
import { VclError } from './source.js'
import { type Compiled, parseDuration, type VclType } from './types.js'
import { lookupVariable } from './variables.js'

/** The std vmod's functions caching-router provides, with vmod_std's names and arguments. */

// std.integer / std.real parse RFC 8941 numbers in varnish 7 (no '+', at most 15 digits).
const INTEGER = /^-?\d{1,15}$/
const DECIMAL = /^-?\d{1,12}(\.\d{1,3})?$/

/** std.integer / std.real / std.ip / std.duration: parse the string, else the fallback. */
function withFallback(e: CallExpr, need: Need, type: VclType, parse: (text: string) => unknown): Compiled {
  // std.ip requires its fallback; the others default it to 0.
  arity(e, type === 'IP' ? 2 : 1, type === 'IP' ? 3 : 2)
  const s = need(0, 's', 'STRING')
  const fb = arg(e, 1, 'fallback') ? need(1, 'fallback', type) : () => 0
  return { type, fn: (ctx) => parse(((s(ctx) as string | undefined) ?? '').trim()) ?? fb(ctx) }
}

/** vmod_std's querysort: the query string's parameters in byte order, empty ones dropped (the '?' stays). */
function querysort(url: string): string {
  const q = url.indexOf('?')
  if (q === -1 || q === url.length - 1) return url
  const params = url
    .slice(q + 1)
    .split('&')
    .filter((p) => p !== '')
  if (params.length === 0) return url.slice(0, q + 1)
  params.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  return `${url.slice(0, q)}?${params.join('&')}`
}

type Need = (i: number, name: string, t: VclType) => (ctx: VclContext) => unknown
type CallExpr = Extract<Expr, { kind: 'call' }>

export function stdCall(e: CallExpr, member: string, env: ExprEnv): Compiled {
  const need: Need = (i, n, t) => compileExpr(arg(e, i, n) as Expr, env, t).fn
  switch (member) {
    case 'tolower':
    case 'toupper': {
      arity(e, 1, 1)
      const s = need(0, 's', 'STRING')
      return member === 'tolower'
        ? { type: 'STRING', fn: (ctx) => ((s(ctx) as string | undefined) ?? '').toLowerCase() }
        : { type: 'STRING', fn: (ctx) => ((s(ctx) as string | undefined) ?? '').toUpperCase() }
    }
    case 'integer':
      return withFallback(e, need, 'INT', (t) => (INTEGER.test(t) ? Number(t) : undefined))
    case 'real':
      return withFallback(e, need, 'REAL', (t) => (DECIMAL.test(t) ? Number(t) : undefined))
    case 'ip':
      return withFallback(e, need, 'IP', (t) => {
        const p = parseIp(t)
        return p ? { address: t, port: 0, family: p.family } : undefined
      })
    case 'duration':
      return withFallback(e, need, 'DURATION', parseDuration)
    case 'port': {
      arity(e, 1, 1)
      const ip = need(0, 'ip', 'IP')
      return { type: 'INT', fn: (ctx) => (ip(ctx) as VclIp | undefined)?.port ?? 0 }
    }
    case 'log': {
      arity(e, 1, 1)
      const s = need(0, 's', 'STRING')
      // varnishd writes it to the log only (VCL_Log); the router's own log line stays.
      return {
        type: 'VOID',
        fn: (ctx) => {
          const text = (s(ctx) as string | undefined) ?? ''
          ctx.log(text)
          ctx.vsl?.vclLog(text)
        },
      }
    }
    case 'healthy': {
      arity(e, 1, 1)
      const b = need(0, 'be', 'BACKEND')
      return { type: 'BOOL', fn: (ctx) => (b(ctx) as VclBackendRef | undefined)?.healthy() ?? false }
    }
    case 'ban': {
      arity(e, 1, 1)
      const s = need(0, 'spec', 'STRING')
      return { type: 'BOOL', fn: (ctx) => ctx.ban((s(ctx) as string | undefined) ?? '') === undefined }
    }
    case 'querysort': {
      arity(e, 1, 1)
      const s = need(0, 'url', 'STRING')
      return { type: 'STRING', fn: (ctx) => querysort((s(ctx) as string | undefined) ?? '') }
    }
    case 'strstr': {
      arity(e, 2, 2)
      const a = need(0, 's1', 'STRING')
      const b = need(1, 's2', 'STRING')
      return {
        type: 'STRING',
        fn: (ctx) => {
          const hay = a(ctx) as string | undefined
          const at = hay?.indexOf((b(ctx) as string | undefined) ?? '') ?? -1
          return at === -1 ? undefined : hay?.slice(at)
        },
      }
    }
    case 'random': {
      arity(e, 2, 2)
      const lo = need(0, 'lo', 'REAL')
      const hi = need(1, 'hi', 'REAL')
      return { type: 'REAL', fn: (ctx) => (lo(ctx) as number) + Math.random() * ((hi(ctx) as number) - (lo(ctx) as number)) }
    }
    case 'syslog': {
      arity(e, 2, 2)
      need(0, 'priority', 'INT')
      const s = need(1, 's', 'STRING')
      return { type: 'VOID', fn: (ctx) => ctx.log((s(ctx) as string | undefined) ?? '') }
    }
    case 'timestamp': {
      arity(e, 1, 1)
      const label = need(0, 's', 'STRING')
      // vmod_std.c: a Timestamp record labelled with the argument (nothing without -n's log).
      return { type: 'VOID', fn: (ctx) => ctx.vsl?.timestamp((label(ctx) as string | undefined) ?? '') }
    }
    case 'collect': {
      arity(e, 1, 2)
      const h = e.args[0]
      if (h?.kind !== 'ident') throw new VclError('Expected a header', spanOf(e.end))
      const spec = lookupVariable(h.token.value, env.dialect, env.method)
      if (!spec || spec.type !== 'HEADER') throw new VclError(`Expected a header, got '${h.token.value}'`, spanOf(h.token))
      env.useVar(spec, h.token, 'write')
      const sep = arg(e, 1, 'separator') ? need(1, 'separator', 'STRING') : () => ', '
      const dot = h.token.value.indexOf('.http.')
      const objName = h.token.value.slice(0, dot) as 'req' | 'bereq' | 'beresp' | 'resp'
      const header = h.token.value.slice(dot + 6)
      return {
        type: 'VOID',
        fn: (ctx) => {
          const headers = ctx[objName]?.http
          const all = headers?.getAll(header) ?? []
          if (headers && all.length > 1) headers.set(header, all.join(sep(ctx) as string))
        },
      }
    }
  }
  throw new VclError(`Symbol not found: 'std.${member}'`, spanOf(e.token))
}

