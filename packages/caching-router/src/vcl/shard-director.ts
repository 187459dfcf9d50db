import type { VclBackendRef, VclContext, VclResolvedBackend } from './context.js'
import {
  BUILTIN_LAYER,
  checkArgs,
  isParamBlob,
  mergeLayers,
  type ShardArgs,
  ShardLayer,
  type ShardValues,
  shardFail,
  sideOf,
  taskLayerR,
  taskLayerW,
} from './shard-param.js'
import { hashStrands32 } from './vrt-hash.js'

/** `new p = directors.shard_param()`: a parameter set with VCL scope. */
export class ShardParamObject extends ShardLayer {
  readonly kind = 'shard_param'
  constructor(name: string) {
    super(name, 'vcl', BUILTIN_LAYER)
  }
}

interface ShardBackend {
  readonly backend: VclBackendRef
  readonly ident: string | undefined
  /** Seconds, NaN for the director's (add_backend without rampup). */
  readonly rampup: number
  replicas: number
}

type Change = { op: 'clear' } | { op: 'add'; b: ShardBackend; weight: number } | { op: 'remove'; backend?: VclBackendRef; ident?: string }

interface Pick {
  hostid: number
  changed: number
}

const UINT32_MAX = 0xffff_ffff

/**
 * `new s = directors.shard()` (vmod_directors_shard_cfg.c, _shard_dir.c): backends on a
 * consistent-hashing ring of the last 32 bits of SHA-256(ident + n) for n below each backend's
 * replicas; a key picks the first point at or past it. Changes (add, remove, clear) queue until
 * `.reconfigure()` or the end of the task (vcl_init, or the request), as varnish's do.
 */
export class ShardDirector implements VclBackendRef {
  readonly kind = 'shard'
  readonly name: string
  #backends: (ShardBackend | undefined)[] = []
  #ring: { point: number; host: number }[] = []
  #warmup = 0
  #rampup = 0
  /** The associated shard_param, or the builtin defaults. */
  param: ShardLayer = BUILTIN_LAYER
  // Changes queued per task (varnish's PRIV_TASK change list).
  #pending = new Map<object, Change[]>()

  constructor(name: string) {
    this.name = name
  }

  // ---- configuration ----

  setWarmup(p: number, log: (m: string) => void): void {
    if (p < 0 || p >= 1) log(`vmod_directors: shard ${this.name}: .set_warmup(${p.toFixed(6)}) ignored`)
    else this.#warmup = p
  }

  setRampup(seconds: number): void {
    this.#rampup = seconds
  }

  associate(blob: unknown): void {
    if (blob === undefined) this.param = BUILTIN_LAYER
    else if (isParamBlob(blob)) this.param = blob.shardParam
    else shardFail(this.name, 'shard .associate param invalid')
  }

  queue(task: object, change: Change): boolean {
    let list = this.#pending.get(task)
    if (!list) {
      list = []
      this.#pending.set(task, list)
    }
    list.push(change)
    return true
  }

  addBackend(task: object, backend: VclBackendRef | undefined, ident: string | undefined, rampup: number | undefined, weight: number | undefined, log: (m: string) => void): boolean {
    if (!backend) shardFail(this.name, 'NULL backend cannot be added')
    let w = 1
    if (weight !== undefined) {
      if (weight >= 1) w = weight
      else log(`vmod_directors: shard ${this.name}: .add_backend(weight=${weight.toFixed(6)}) ignored`)
    }
    const b: ShardBackend = { backend, ident: ident === '' ? undefined : ident, rampup: rampup ?? Number.NaN, replicas: 0 }
    return this.queue(task, { op: 'add', b, weight: w })
  }

  removeBackend(task: object, backend: VclBackendRef | undefined, ident: string | undefined): boolean {
    if (!backend && ident === undefined) shardFail(this.name, '.backend_remove(): either backend or ident are required')
    return this.queue(task, { op: 'remove', backend, ident: ident === '' ? undefined : ident })
  }

  /** `.reconfigure(replicas)`: applies the task's changes and rebuilds the ring. */
  reconfigure(task: object, replicas: number, log: (m: string) => void): boolean {
    if (replicas <= 0) {
      log(`vmod_directors: shard ${this.name}: .reconfigure() invalid replicas argument ${replicas}`)
      return false
    }
    const changes = this.#pending.get(task)
    this.#pending.delete(task)
    if (!changes || changes.length === 0) return true
    this.#apply(changes, replicas, log)
    this.#ring = []
    const live = this.#backends as ShardBackend[]
    if (live.length === 0) {
      log(`vmod_directors: shard ${this.name}: .reconfigure() no backends`)
      return false
    }
    this.#buildRing()
    return true
  }

  /** The end of a task: its queued changes take effect with 67 replicas (shard_change_fini). */
  endTask(task: object, log: (m: string) => void): void {
    if (this.#pending.has(task)) this.reconfigure(task, 67, log)
  }

  // shardcfg_apply_change: the changes after the last clear, with holes filled as varnish does.
  #apply(changes: Change[], replicas: number, log: (m: string) => void): void {
    const lastClear = changes.findLastIndex((c) => c.op === 'clear')
    const bb = this.#backends
    if (lastClear !== -1) bb.length = 0
    for (const c of changes.slice(lastClear + 1)) {
      if (c.op === 'add') {
        const existing = bb.find((x) => x !== undefined && sameBackend(c.b, x))
        if (existing) {
          log(`vmod_directors: shard ${this.name}: backend ${existing.backend.name}${existing.ident ? `/${existing.ident}` : ''} already exists - skipping`)
          continue
        }
        const replicasFor = Math.min(UINT32_MAX, Math.floor(replicas * c.weight))
        const hole = bb.indexOf(undefined)
        const entry = { ...c.b, replicas: replicasFor }
        if (hole === -1) bb.push(entry)
        else bb[hole] = entry
      } else if (c.op === 'remove') {
        for (let i = 0; i < bb.length; i++) {
          const x = bb[i]
          if (x !== undefined && removes(c, x)) bb[i] = undefined
        }
      }
    }
    // shardcfg_backend_finalize: trailing holes dropped, the last entries moved into the others.
    for (;;) {
      while (bb.length > 0 && bb[bb.length - 1] === undefined) bb.pop()
      const hole = bb.indexOf(undefined)
      if (hole === -1) break
      bb[hole] = bb.pop()
    }
  }

  // shardcfg_hashcircle
  #buildRing(): void {
    const bb = this.#backends as ShardBackend[]
    const rmax = Math.floor((UINT32_MAX - 1) / bb.length)
    const ring: { point: number; host: number }[] = []
    bb.forEach((b, host) => {
      const ident = b.ident ?? b.backend.name
      const r = Math.min(b.replicas, rmax)
      for (let j = 0; j < r; j++) ring.push({ point: hashStrands32([ident, String(j)]), host })
    })
    ring.sort((a, b) => a.point - b.point)
    this.#ring = ring
  }

  // ---- choice ----

  healthy(): boolean {
    return this.#backends.some((b) => b?.backend.healthy())
  }

  /** Healthy backends and all backends (backend.list's Probe column, vmod_shard_list). */
  memberHealth(): { healthy: number; total: number } {
    const live = this.#backends.filter((b) => b !== undefined)
    return { healthy: live.filter((b) => b.backend.healthy()).length, total: live.length }
  }

  get changed(): number {
    let c = 0
    for (const b of this.#backends) c = Math.max(c, b?.backend.changed ?? 0)
    return c
  }

  /**
   * `.backend(...)`. `lazy`: resolve=LAZY (the director itself, its arguments kept for the
   * backend request); otherwise the backend picked now.
   */
  backend(ctx: VclContext, a: ShardArgs & { resolve?: 'NOW' | 'LAZY'; param?: unknown; anyArg: boolean }): VclBackendRef | undefined {
    const side = sideOf(ctx)
    const resolve = a.resolve ?? (side === 'housekeeping' ? 'LAZY' : 'NOW')
    let pp: ShardLayer
    if (resolve === 'LAZY') {
      if (!a.anyArg) return this
      if (side !== 'backend') shardFail(this.name, '.backend(resolve=LAZY) with other parameters can only be used in backend/pipe context')
      pp = taskLayerW(ctx.bereq as object, this, this.param)
    } else {
      if (side === 'housekeeping') shardFail(this.name, '.backend(resolve=NOW) can not be used in vcl_init{}/vcl_fini{}')
      pp = side === 'backend' ? taskLayerW(ctx.bereq as object, this, this.param) : new ShardLayer(this.name, 'stack', this.param)
    }
    if (a.param !== undefined) {
      if (!isParamBlob(a.param)) shardFail(this.name, '.backend(key_blob) param invalid')
      pp.defaults = a.param.shardParam
    }
    pp.values = checkArgs(this.name, 'shard.backend()', a)
    if (resolve === 'LAZY') return this
    const v = mergeLayers(pp.values, pp.defaults)
    return this.#pickBy(ctx, v, side === 'backend')
  }

  /** LAZY resolution when the fetch or pipe starts: the task's parameters, else the director's. */
  resolve(ctx: VclContext): VclResolvedBackend | undefined {
    const p = taskLayerR(ctx.bereq, this, this.param)
    const v = mergeLayers({ ...p.values }, p.defaults)
    return this.#pickBy(ctx, v, true)?.resolve(ctx)
  }

  #pickBy(ctx: VclContext, v: ShardValues, backendSide: boolean): VclBackendRef | undefined {
    return this.pick(ctx, keyOf(ctx, v, backendSide), v.alt ?? 0, v.warmup ?? -1, v.rampup ?? true, v.healthy ?? 'CHOSEN')
  }

  /** sharddir_pick_be */
  pick(ctx: VclContext, key: number, altIn: number, warmupIn: number, rampup: boolean, healthy: string): VclBackendRef | undefined {
    const bb = this.#backends as ShardBackend[]
    const n = bb.length
    if (n === 0 || this.#ring.length === 0) {
      ctx.log(`vmod_directors: shard ${this.name}: no backends`)
      return undefined
    }
    let alt = altIn
    if (alt < 0) {
      ctx.log(`vmod_directors: shard ${this.name}: invalid negative parameter alt=${alt}, set to 0`)
      alt = 0
    } else if (alt > n - 1) {
      ctx.log(`vmod_directors: shard ${this.name}: parameter alt=${alt} limited to ${n - 1}`)
      alt = n - 1
    }
    const st = new Walk(this.#ring, bb, lookup(this.#ring, key))
    if (alt > 0 && st.next(alt - 1, healthy === 'ALL') === -1) return st.previous ? bb[st.previous.hostid]?.backend : undefined
    if (st.next(0, healthy !== 'IGNORE') === -1) return st.previous ? bb[st.previous.hostid]?.backend : undefined
    const last = st.last as Pick
    const be = (bb[last.hostid] as ShardBackend).backend
    const warmup = warmupIn === -1 ? this.#warmup : warmupIn
    if (alt > 0 || healthy === 'IGNORE' || (!rampup && warmup === 0) || st.next(0, true) === -1) return be
    const chosen = st.previous as Pick
    const other = st.last as Pick
    const chosenR = this.#rampupOf(chosen.hostid)
    const otherR = this.#rampupOf(other.hostid)
    const now = ctx.now()
    if (now - chosen.changed < chosenR) {
      // The chosen backend is ramping up: it keeps a share growing with the time since it went healthy.
      if (!rampup || now - other.changed < otherR || Math.random() * chosenR < now - chosen.changed) return be
    } else if (warmup === 0 || Math.random() > warmup) return be
    return (bb[other.hostid] as ShardBackend).backend
  }

  #rampupOf(host: number): number {
    const r = (this.#backends[host] as ShardBackend).rampup
    return Number.isNaN(r) ? this.#rampup : r
  }
}

/** shard_get_key: by=HASH is the request's digest on the backend side, req.url's hash on the client side. */
export function keyOf(ctx: VclContext, v: ShardValues, backendSide: boolean): number {
  const by = v.by ?? 'HASH'
  if (by === 'KEY' || by === 'BLOB') return v.key ?? 0
  if (by === 'HASH' && backendSide && ctx.digest) return Buffer.from(ctx.digest()).readUInt32BE(0)
  const url = !backendSide || ctx.method === 'pipe' ? ctx.req.url : (ctx.bereq?.url ?? ctx.req.url)
  return hashStrands32([url])
}

/** Which ring index a key starts at: shard_lookup's search, kept as it is. */
function lookup(ring: readonly { point: number }[], key: number): number {
  const n = ring.length
  let low = 0
  let high = n
  for (;;) {
    const i = Math.floor((high + low) / 2)
    const p = (ring[i] as { point: number }).point
    if (p === key) return i
    if (i === n - 1) return n - 1
    if (p < key && (ring[i + 1] as { point: number }).point >= key) return i + 1
    if (p > key) {
      if (i === 0) return 0
      high = i
    } else low = i
  }
}

/** shard_next's walk state: the ring from a start index, each backend seen once. */
class Walk {
  readonly #picked = new Set<number>()
  previous: Pick | undefined
  last: Pick | undefined
  constructor(
    readonly ring: readonly { point: number; host: number }[],
    readonly backends: readonly ShardBackend[],
    public idx: number,
  ) {}

  next(skipIn: number, healthyOnly: boolean): number {
    let skip = skipIn
    const n = this.backends.length
    let chosen = -1
    while (this.#picked.size < n && skip >= 0) {
      const c = (this.ring[this.idx] as { host: number }).host
      if (!this.#picked.has(c)) {
        this.#picked.add(c)
        const be = (this.backends[c] as ShardBackend).backend
        const changed = be.changed ?? 0
        let into: 'last' | 'previous' | undefined
        if (be.healthy()) {
          if (skip-- === 0) {
            chosen = c
            into = 'last'
          } else into = 'previous'
        } else if (!healthyOnly && skip-- === 0) {
          chosen = c
          into = 'last'
        }
        if (into === 'last' && this.last) this.previous = this.last
        if (into) this[into] = { hostid: c, changed }
        if (chosen !== -1) break
      }
      if (++this.idx === this.ring.length) this.idx = 0
    }
    return chosen
  }
}

function identOf(b: ShardBackend): string {
  return b.ident ?? b.backend.name
}

// shardcfg_backend_cmp: same ident (a backend's name standing for a missing one), or the same backend.
function sameBackend(a: ShardBackend, b: ShardBackend): boolean {
  if (a.ident === undefined && b.ident === undefined) return a.backend === b.backend
  return identOf(a) === identOf(b)
}

// shardcfg_backend_del_cmp: a backend without ident removes all its instances.
function removes(c: { backend?: VclBackendRef; ident?: string }, b: ShardBackend): boolean {
  if (c.ident === undefined) return c.backend === b.backend
  return c.ident === identOf(b)
}
