import type { VclContext } from './context.js'
import { BACKEND_METHODS } from './types.js'
import { VclRuntimeError } from './variables.js'

/**
 * The shard director's parameters (vmod_directors_shard.c): `shard.backend()`'s arguments, a
 * `directors.shard_param()` object's defaults, and their per-backend-request overrides, each
 * layer taking what it leaves undefined from the next.
 */

export const SHARD_BY = ['HASH', 'URL', 'KEY', 'BLOB'] as const
export const SHARD_HEALTHY = ['CHOSEN', 'IGNORE', 'ALL'] as const
export type ShardBy = (typeof SHARD_BY)[number]
export type ShardHealthy = (typeof SHARD_HEALTHY)[number]

export interface ShardValues {
  by?: ShardBy
  /** The key that goes with by=KEY or by=BLOB. */
  key?: number
  alt?: number
  warmup?: number
  rampup?: boolean
  healthy?: ShardHealthy
}

/** What a call gave, before checking (shard.backend() and shard_param.set() arguments). */
export interface ShardArgs {
  by?: ShardBy
  key?: number
  keyBlob?: Uint8Array
  hasKeyBlob?: boolean
  alt?: number
  warmup?: number
  rampup?: boolean
  healthy?: ShardHealthy
}

export class ShardLayer {
  values: ShardValues = {}
  constructor(
    readonly name: string,
    readonly scope: 'vmod' | 'vcl' | 'task' | 'stack',
    public defaults: ShardLayer | undefined,
  ) {}

  /** These values, then those of each layer of defaults in turn. */
  chain(): ShardValues[] {
    return this.defaults ? [this.values, ...this.defaults.chain()] : [this.values]
  }
}

/** shard_param_default: by=HASH, healthy=CHOSEN, rampup, alt 0, warmup -1 (the director's). */
export const BUILTIN_LAYER = new ShardLayer('builtin defaults', 'vmod', undefined)
BUILTIN_LAYER.values = { by: 'HASH', healthy: 'CHOSEN', rampup: true, alt: 0, warmup: -1 }
Object.freeze(BUILTIN_LAYER.values)

/** What the BLOB of `shard_param.use()` carries. */
export interface ShardParamBlob {
  readonly shardParam: ShardLayer
}

export function isParamBlob(v: unknown): v is ShardParamBlob {
  return typeof v === 'object' && v !== null && (v as ShardParamBlob).shardParam instanceof ShardLayer
}

/** "shard NAME: ..." as shard_fail writes it; the VCL fails (a 503, or vcl.load refused). */
export function shardFail(name: string, text: string): never {
  throw new VclRuntimeError(`vmod_directors: shard ${name}: ${text}`)
}

export type Side = 'housekeeping' | 'client' | 'backend'

/** varnish treats vcl_pipe as backend context for the shard director (SHARD_VCL_TASK_BEREQ). */
export function sideOf(ctx: VclContext): Side {
  const m = ctx.method
  if (m === 'init' || m === 'fini' || m === undefined) return 'housekeeping'
  if (m === 'pipe' || (BACKEND_METHODS as readonly string[]).includes(m)) return 'backend'
  return 'client'
}

// Per backend request layers (varnish's PRIV_TASK), keyed by the request's bereq.
const TASKS = new WeakMap<object, Map<object, ShardLayer>>()

/** shard_param_task_l: the task layer of `id`, made on first use. */
export function taskLayerW(task: object, id: object, pa: ShardLayer): ShardLayer {
  let layers = TASKS.get(task)
  if (!layers) {
    layers = new Map()
    TASKS.set(task, layers)
  }
  const existing = layers.get(id)
  if (existing) return existing
  const defaults = id === pa || pa.scope !== 'vcl' ? pa : taskLayerW(task, pa, pa)
  const p = new ShardLayer(pa.name, 'task', defaults)
  layers.set(id, p)
  return p
}

/** shard_param_task_r: the task layer of `id` if there is one, else what it would default to. */
export function taskLayerR(task: object | undefined, id: object, pa: ShardLayer): ShardLayer {
  const p = task === undefined ? undefined : TASKS.get(task)?.get(id)
  if (p) return p
  if (id === pa || pa.scope !== 'vcl') return pa
  return taskLayerR(task, pa, pa)
}

/** shard_param_merge: fills what `to` leaves undefined from `from` and its defaults. */
export function mergeLayers(to: ShardValues, from: ShardLayer | undefined): ShardValues {
  for (const v of from?.chain() ?? []) {
    if (to.by === undefined && v.by !== undefined) {
      to.by = v.by
      if (v.by === 'KEY' || v.by === 'BLOB') to.key = v.key
    }
    if (to.healthy === undefined) to.healthy = v.healthy
    if (to.rampup === undefined) to.rampup = v.rampup
    if (to.alt === undefined) to.alt = v.alt
    if (to.warmup === undefined) to.warmup = v.warmup
  }
  return to
}


/** shard_param_args: checks a call's arguments into the values of a layer (replacing them). */
export function checkArgs(name: string, func: string, a: ShardArgs): ShardValues {
  const by = a.by ?? 'HASH'
  const v: ShardValues = {}
  if (by === 'KEY') {
    if (a.key === undefined) shardFail(name, `${func} missing key argument with by=${by}`)
    if (a.key < 0 || a.key > 0xffff_ffff) shardFail(name, `${func} invalid key argument ${a.key} with by=${by}`)
    v.key = a.key
  } else if (by === 'BLOB') {
    if (!a.hasKeyBlob) shardFail(name, `${func} missing key_blob argument with by=${by}`)
    v.key = blobKey(a.keyBlob)
  } else if (a.key !== undefined || a.hasKeyBlob) {
    shardFail(name, `${func} key and key_blob arguments are invalid with by=${by}`)
  }
  if (a.by !== undefined) v.by = a.by
  if (a.alt !== undefined) {
    if (a.alt < 0) shardFail(name, `${func} invalid alt argument ${a.alt}`)
    v.alt = a.alt
  }
  if (a.warmup !== undefined) {
    if ((a.warmup < 0 && a.warmup !== -1) || a.warmup > 1) shardFail(name, `${func} invalid warmup argument ${a.warmup.toFixed(6)}`)
    v.warmup = a.warmup
  }
  if (a.rampup !== undefined) v.rampup = a.rampup
  if (a.healthy !== undefined) v.healthy = a.healthy
  return v
}

/**
 * shard_blob_key: the first four bytes in network order, a shorter blob left-padded with
 * zeros; none or an empty one is key 0 (varnish logs an error and goes on).
 */
function blobKey(b: Uint8Array | undefined): number {
  if (b === undefined || b.length === 0) return 0
  let k = 0
  const n = Math.min(4, b.length)
  for (let i = 0; i < n; i++) k = k * 256 + (b[i] as number)
  return k
}
