import type { Expr } from './ast.js'
import type { ExprEnv } from './compile-expr.js'
import type { VclBackendRef, VclContext } from './context.js'
import { spanOf } from './lexer.js'
import { type ShardArgs, SHARD_BY, SHARD_HEALTHY, type ShardBy, type ShardHealthy, checkArgs, mergeLayers, shardFail, sideOf, taskLayerR, taskLayerW } from './shard-param.js'
import { keyOf, ShardDirector, ShardParamObject } from './shard-director.js'
import { VclError } from './source.js'
import type { Compiled } from './types.js'
import { VclRuntimeError } from './variables.js'
import { Director } from './vdir-director.js'
import { type ArgSpec, type BoundArg, bindArgs } from './vmod-args.js'
import { hashStrands32 } from './vrt-hash.js'

type CallExpr = Extract<Expr, { kind: 'call' }>

/** An object `new x = directors.KIND(...)` makes. */
export type VmodObject = Director | ShardDirector | ShardParamObject

const VDIR_KINDS = ['round_robin', 'fallback', 'random', 'hash'] as const

/** The constructors of vmod_directors 7.1 (vmod_directors.vcc), with their arguments. */
export function newObject(name: string, ctor: CallExpr, kind: string, env: ExprEnv): VmodObject | undefined {
  if ((VDIR_KINDS as readonly string[]).includes(kind)) {
    const [sticky] = bindArgs(ctor, kind === 'fallback' ? [{ name: 'sticky', type: 'BOOL' }] : [], env)
    if (sticky && sticky.constant === undefined) throw new VclError('Expected a constant BOOL', spanOf(ctor.end))
    return new Director(name, kind as (typeof VDIR_KINDS)[number], { sticky: sticky?.constant === true })
  }
  if (kind === 'shard') {
    bindArgs(ctor, [], env)
    return new ShardDirector(name)
  }
  if (kind === 'shard_param') {
    bindArgs(ctor, [], env)
    return new ShardParamObject(name)
  }
  return undefined
}

const read = <T>(a: BoundArg, ctx: VclContext): T | undefined => a?.fn(ctx) as T | undefined
const ofType = (o: VmodObject) => (o instanceof Director ? o.kind : o.kind)

/**
 * vmod_directors' functions: `directors.lookup(STRING)`, a backend or director by name, in
 * vcl_init and vcl_fini only (VPFX(lookup) fails the VCL elsewhere); none of that name is NULL.
 */
export function directorsCall(e: CallExpr, member: string, env: ExprEnv): Compiled | undefined {
  if (member !== 'lookup') return undefined
  const [n] = bindArgs(e, [{ name: '', type: 'STRING', required: true }], env)
  const { backends, objects } = env
  return {
    type: 'BACKEND',
    fn: (ctx) => {
      if (sideOf(ctx) !== 'housekeeping') shardlessFail('lookup() may only be called from vcl_init / vcl_fini')
      const name = read<string>(n, ctx) ?? ''
      const o = objects.get(name)
      return backends.get(name) ?? (o instanceof ShardParamObject ? undefined : o)
    },
  }
}

/** Methods of the directors vmod's objects (`rr.add_backend(b)`, `h.backend(key)`, `s.backend(by=URL)`). */
export function objectCall(e: CallExpr, o: VmodObject, member: string, env: ExprEnv): Compiled {
  const c = o instanceof Director ? vdirCall(e, o, member, env) : o instanceof ShardDirector ? shardCall(e, o, member, env) : paramCall(e, o, member, env)
  if (c) return c
  const at = e.token.value.length - member.length
  throw new VclError(`Unknown property '${member}' for type directors.${ofType(o)}`, { ...spanOf(e.token), offset: e.token.offset + at, length: member.length })
}

function vdirCall(e: CallExpr, d: Director, member: string, env: ExprEnv): Compiled | undefined {
  switch (member) {
    case 'add_backend': {
      // vmod_directors.vcc: hash names its weight; random's is unnamed and required.
      const weight: ArgSpec[] = d.kind === 'random' ? [{ name: '', type: 'REAL', required: true }] : d.kind === 'hash' ? [{ name: 'weight', type: 'REAL' }] : []
      const [b, w] = bindArgs(e, [{ name: '', type: 'BACKEND', required: true }, ...weight], env)
      return {
        type: 'VOID',
        fn: (ctx) => {
          const be = read<VclBackendRef>(b, ctx)
          // vdir_add_backend: VRT_fail.
          if (!be) shardlessFail(`${d.name}: None backend cannot be added`)
          d.addBackend(be, read<number>(w, ctx) ?? (d.kind === 'hash' ? 1 : 0))
        },
      }
    }
    case 'remove_backend': {
      const [b] = bindArgs(e, [{ name: '', type: 'BACKEND', required: true }], env)
      return {
        type: 'VOID',
        fn: (ctx) => {
          const be = read<VclBackendRef>(b, ctx)
          if (!be) shardlessFail(`${d.name}: None backend cannot be removed`)
          d.removeBackend(be)
        },
      }
    }
    case 'backend': {
      if (d.kind === 'hash') {
        const [k] = bindArgs(e, [{ name: '', type: 'STRING', required: true }], env)
        return { type: 'BACKEND', fn: (ctx) => d.pickByKey([read<string>(k, ctx)]) }
      }
      bindArgs(e, [], env)
      return { type: 'BACKEND', fn: () => d, constant: d }
    }
  }
  return undefined
}

// VRT_fail from vdir.c: the VCL fails (a 503, or vcl.load refused in vcl_init).
function shardlessFail(text: string): never {
  throw new VclRuntimeError(text)
}

const BACKEND_ARGS: ArgSpec[] = [
  { name: 'by', type: SHARD_BY },
  { name: 'key', type: 'INT' },
  { name: 'key_blob', type: 'BLOB' },
  { name: 'alt', type: 'INT' },
  { name: 'warmup', type: 'REAL' },
  { name: 'rampup', type: 'BOOL' },
  { name: 'healthy', type: SHARD_HEALTHY },
]

function shardArgs(bound: BoundArg[], ctx: VclContext): ShardArgs {
  const [by, key, keyBlob, alt, warmup, rampup, healthy] = bound
  return {
    by: read<ShardBy>(by, ctx),
    key: read<number>(key, ctx),
    keyBlob: read<Uint8Array>(keyBlob, ctx),
    hasKeyBlob: keyBlob !== undefined,
    alt: read<number>(alt, ctx),
    warmup: read<number>(warmup, ctx),
    rampup: read<boolean>(rampup, ctx),
    healthy: read<ShardHealthy>(healthy, ctx),
  }
}

function shardCall(e: CallExpr, s: ShardDirector, member: string, env: ExprEnv): Compiled | undefined {
  const bind = (specs: ArgSpec[]) => bindArgs(e, specs, env)
  switch (member) {
    case 'set_warmup': {
      const [p] = bind([{ name: 'probability', type: 'REAL' }])
      return { type: 'VOID', fn: (ctx) => s.setWarmup(read<number>(p, ctx) ?? 0, ctx.log) }
    }
    case 'set_rampup': {
      const [d] = bind([{ name: 'duration', type: 'DURATION' }])
      return { type: 'VOID', fn: (ctx) => s.setRampup(read<number>(d, ctx) ?? 0) }
    }
    case 'associate': {
      const [p] = bind([{ name: 'param', type: 'BLOB' }])
      return { type: 'VOID', fn: (ctx) => s.associate(read(p, ctx)) }
    }
    case 'add_backend': {
      const [b, ident, rampup, weight] = bind([
        { name: 'backend', type: 'BACKEND', required: true },
        { name: 'ident', type: 'STRING' },
        { name: 'rampup', type: 'DURATION' },
        { name: 'weight', type: 'REAL' },
      ])
      return {
        type: 'BOOL',
        fn: (ctx) => s.addBackend(ctx, read(b, ctx), read(ident, ctx), read(rampup, ctx), read(weight, ctx), ctx.log),
      }
    }
    case 'remove_backend': {
      const [b, ident] = bind([
        { name: 'backend', type: 'BACKEND' },
        { name: 'ident', type: 'STRING' },
      ])
      return { type: 'BOOL', fn: (ctx) => s.removeBackend(ctx, read(b, ctx), read(ident, ctx)) }
    }
    case 'clear':
      bind([])
      return { type: 'BOOL', fn: (ctx) => s.queue(ctx, { op: 'clear' }) }
    case 'reconfigure': {
      const [r] = bind([{ name: 'replicas', type: 'INT' }])
      return { type: 'BOOL', fn: (ctx) => s.reconfigure(ctx, read<number>(r, ctx) ?? 67, ctx.log) }
    }
    case 'key': {
      const [k] = bind([{ name: '', type: 'STRING', required: true }])
      return { type: 'INT', fn: (ctx) => hashStrands32([read<string>(k, ctx)]) }
    }
    case 'backend': {
      const bound = bind([...BACKEND_ARGS, { name: 'param', type: 'BLOB' }, { name: 'resolve', type: ['NOW', 'LAZY'] }])
      const param = bound[7]
      const resolve = bound[8]
      const anyArg = bound.slice(0, 8).some((a) => a !== undefined)
      return {
        type: 'BACKEND',
        fn: (ctx) => s.backend(ctx, { ...shardArgs(bound, ctx), param: read(param, ctx), resolve: read<'NOW' | 'LAZY'>(resolve, ctx), anyArg }),
      }
    }
    case 'debug': {
      // Sets which diagnostics varnishd writes to its shared-memory log; the choice is the same without it.
      bind([{ name: '', type: 'INT', required: true }])
      return { type: 'VOID', fn: () => undefined }
    }
  }
  return undefined
}

function paramCall(e: CallExpr, p: ShardParamObject, member: string, env: ExprEnv): Compiled | undefined {
  const bind = (specs: ArgSpec[]) => bindArgs(e, specs, env)
  // shard_param_prep: set() and clear() change the VCL's defaults in vcl_init, the backend
  // request's own in backend context and vcl_pipe, and fail in other client subroutines.
  const layerFor = (ctx: VclContext, who: string) => {
    const side = sideOf(ctx)
    if (side === 'client') shardFail(p.name, `${who} may only be used in vcl_init and in backend/pipe context`)
    return side === 'backend' ? taskLayerW(ctx.bereq as object, p, p) : p
  }
  // vmod_shard_param_read: the backend request's layer where there is one.
  const view = (ctx: VclContext) => {
    const l = sideOf(ctx) === 'backend' ? taskLayerR(ctx.bereq, p, p) : p
    return mergeLayers({ ...l.values }, l.defaults)
  }
  switch (member) {
    case 'set': {
      const bound = bind(BACKEND_ARGS)
      return {
        type: 'VOID',
        fn: (ctx) => {
          const l = layerFor(ctx, 'shard_param.set()')
          l.values = checkArgs(p.name, 'shard_param.set()', shardArgs(bound, ctx))
        },
      }
    }
    case 'clear':
      bind([])
      return {
        type: 'VOID',
        fn: (ctx) => {
          layerFor(ctx, 'shard_param.clear()').values = {}
        },
      }
    case 'get_by':
      bind([])
      return { type: 'STRING', fn: (ctx) => view(ctx).by ?? 'HASH' }
    case 'get_key':
      bind([])
      return { type: 'INT', fn: (ctx) => keyOf(ctx, view(ctx), sideOf(ctx) === 'backend') }
    case 'get_alt':
      bind([])
      return { type: 'INT', fn: (ctx) => view(ctx).alt ?? 0 }
    case 'get_warmup':
      bind([])
      return { type: 'REAL', fn: (ctx) => view(ctx).warmup ?? -1 }
    case 'get_rampup':
      bind([])
      return { type: 'BOOL', fn: (ctx) => view(ctx).rampup ?? true }
    case 'get_healthy':
      bind([])
      return { type: 'STRING', fn: (ctx) => view(ctx).healthy ?? 'CHOSEN' }
    case 'use':
      bind([])
      return { type: 'BLOB', fn: () => ({ shardParam: p }) }
  }
  return undefined
}
