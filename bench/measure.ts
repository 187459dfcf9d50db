import { isMissing, type Started } from './groups.js'
import type { BenchContext, Server } from './layers/server.js'
import { runClient } from './load/clients.js'
import { runH2load } from './load/h2load.js'
import type { HttpLoadGenerator } from './load/http-load.js'
import { burst, originCount, probe } from './load/probe.js'
import { type LoadResult, loadProblem } from './load/result.js'
import type { BenchOptions } from './options.js'
import type { Progress } from './progress.js'
import type { Measure, Unit } from './scenarios.js'
import { median } from './stats.js'

/** One side of a table row: a contender's medians over the rounds. */
export interface Side {
  name: string
  role: string
  value: number | null
  p50Ms: number | null
  p99Ms: number | null
  samples: number[]
  peakRssKiB?: number
  problem?: string
  /** The contender is not installed or was left out: a skip, not a failure. */
  absent?: boolean
  startedFrom?: 'config' | 'flags'
}

export interface Row {
  id: number
  title: string
  unit: Unit | 'KiB/conn'
  /** Ours, or a Node peer on the peers' rows, or the ceiling's subject. */
  left: Side
  right?: Side
  /** Median over rounds of left/right; null when either side has no number. */
  ratio: number | null
  notes: string[]
}

export interface MeasureEnv {
  ctx: BenchContext
  opts: BenchOptions
  gen: HttpLoadGenerator
  progress: Progress
}

const MIB = 1024 * 1024

function urlOf(m: Measure, s: Server): string {
  return `${m.https ? 'https' : 'http'}://127.0.0.1:${s.port}${m.path}`
}

/**
 * Warm-up then one measurement of one contender; `measuring` runs between the two (the cache
 * scenario reads the origin's counter there). A quick run warms up with a short bounded burst.
 */
async function runOnce(env: MeasureEnv, m: Measure, s: Server, measuring?: () => Promise<void>): Promise<LoadResult> {
  const { opts, ctx, gen } = env
  const d = opts.durationS
  const warmS = String(Math.max(1, opts.warmupS))
  let run: () => Promise<LoadResult>
  if (m.kind === 'handshakes') {
    const args = ['--port', String(s.port), '--concurrency', String(Math.min(opts.connections, 16))]
    await runClient('handshakes', [...args, '--duration', warmS, '--max', opts.warmupS > 0 ? '100000' : '20'], ctx.loadCpus, 60)
    run = () => runClient('handshakes', [...args, '--duration', String(d)], ctx.loadCpus, d + 60)
  } else if (m.kind === 'ws') {
    const url = `${m.https ? 'wss' : 'ws'}://127.0.0.1:${s.port}${m.path}`
    const args = ['--url', url, '--connections', String(Math.min(opts.connections, 32)), '--size', '64']
    await runClient('ws-echo', [...args, '--duration', warmS, '--max', opts.warmupS > 0 ? '10000000' : '500'], ctx.loadCpus, 60)
    run = () => runClient('ws-echo', [...args, '--duration', String(d), '--max', '10000000'], ctx.loadCpus, d + 60)
  } else if (m.kind === 'polling') {
    // The load: 200 clients whatever -c says (each a long-poll held open at the app).
    const args = ['--url', `https://127.0.0.1:${s.port}`, '--clients', '200']
    await runClient('polling', [...args, '--duration', warmS], ctx.loadCpus, 120)
    run = () => runClient('polling', [...args, '--duration', String(d)], ctx.loadCpus, d + 120)
  } else if (m.kind === 'h2') {
    // The load: 10 connections, 10 streams each, whatever -c says for HTTP/1.
    const load = { url: urlOf(m, s), connections: 10, streams: 10, headers: m.headers, cpus: ctx.loadCpus, warmupS: opts.warmupS }
    run = () => runH2load({ ...load, durationS: d })
  } else {
    const load = { url: urlOf(m, s), connections: opts.connections, headers: m.headers, cpus: ctx.loadCpus }
    if (opts.warmupS > 0) await gen.run({ ...load, durationS: opts.warmupS })
    else await burst(load.url, { requests: 300, concurrency: 8, headers: m.headers })
    run = () => gen.run({ ...load, durationS: d })
  }
  await measuring?.()
  return run()
}

function measuredValue(m: Measure, r: LoadResult): number {
  return m.unit === 'MiB/s' ? r.bytesPerSec / MIB : r.rate
}

/**
 * Measures every contender of a scenario, alternating their order each round (A B, B A, ...)
 * because the machine is shared and noisy; the ratio reported is the median of the rounds'.
 */
export async function runMeasure(env: MeasureEnv, m: Measure, started: Started): Promise<Row[]> {
  const keys = [m.ours, m.theirs, ...(m.baseline ? [m.baseline.key] : []), ...m.peers]
  const problems = new Map<string, string>()
  const servers = new Map<string, Server>()
  for (const key of keys) {
    const slot = started.slots[key]
    if (isMissing(slot)) {
      problems.set(key, slot?.missing ?? 'not started')
      continue
    }
    // Wrong answers are reported, never measured: a fast 404 is not a fast file.
    const wrong = await probe(urlOf({ ...m, path: m.kind === 'handshakes' ? '/' : m.path }, slot), m.expect)
    if (wrong) problems.set(key, `${slot.name} ${wrong}`)
    else servers.set(key, slot)
  }
  const samples = new Map<string, LoadResult[]>(keys.map((k) => [k, []]))
  const reachedOrigin = new Map<string, number>()
  for (let round = 0; round < env.opts.rounds; round++) {
    const order = round % 2 === 0 ? keys : [...keys].reverse()
    for (const key of order) {
      const s = servers.get(key)
      if (!s || problems.has(key)) continue
      env.progress.measure(`scenario ${m.id} ${m.title}: ${s.name}, round ${round + 1}/${env.opts.rounds}`)
      try {
        let before = 0
        const countFrom = m.cacheHit && started.originPort ? started.originPort : undefined
        const r = await runOnce(env, m, s, async () => {
          if (countFrom) before = await originCount(countFrom)
        })
        if (countFrom) {
          const reached = (await originCount(countFrom)) - before
          reachedOrigin.set(key, (reachedOrigin.get(key) ?? 0) + reached / Math.max(1, r.count))
        }
        const bad = loadProblem(r)
        if (bad) problems.set(key, `${s.name}: ${bad}`)
        else samples.get(key)?.push(r)
      } catch (err) {
        problems.set(key, `${s.name}: ${(err as Error).message.split('\n')[0]}`)
      }
    }
  }
  const side = (key: string): Side => {
    const s = servers.get(key)
    const slot = started.slots[key]
    const rs = samples.get(key) ?? []
    const problem = problems.get(key)
    return {
      name: s?.name ?? (isMissing(slot) ? (slot?.name ?? key) : slot.name),
      role: key === m.ours ? 'ours' : key === m.theirs ? 'theirs' : 'peer',
      value: problem ? null : median(rs.map((r) => measuredValue(m, r))),
      p50Ms: problem ? null : median(rs.flatMap((r) => (r.p50Ms === null ? [] : [r.p50Ms]))),
      p99Ms: problem ? null : median(rs.flatMap((r) => (r.p99Ms === null ? [] : [r.p99Ms]))),
      samples: rs.map((r) => measuredValue(m, r)),
      ...(problem ? { problem } : {}),
      ...(isMissing(slot) && slot?.absent ? { absent: true } : {}),
      ...(s?.startedFrom ? { startedFrom: s.startedFrom } : {}),
    }
  }
  const theirs = side(m.theirs)
  const rows: Row[] = []
  const base = m.baseline ? side(m.baseline.key) : undefined
  for (const key of [m.ours, ...(m.baseline ? [m.baseline.key] : []), ...m.peers]) {
    const left = side(key)
    const notes: string[] = []
    if (left.startedFrom === 'flags') notes.push(`${left.name} started from flags: it does not read the shared config file yet`)
    const hitShare = reachedOrigin.get(key)
    if (m.cacheHit && hitShare !== undefined) {
      const share = hitShare / env.opts.rounds
      if (share > 0.01) notes.push(`${left.name} is not caching: ${(share * 100).toFixed(0)}% of requests reached the origin`)
    }
    if (m.cacheHit && key === m.ours) {
      const theirShare = reachedOrigin.get(m.theirs)
      if (theirShare !== undefined && theirShare / env.opts.rounds > 0.01) notes.push(`${theirs.name} let requests reach the origin`)
    }
    if (key === m.ours && m.baseline && base) {
      const r = ratioOf(left.samples, base.samples, left.problem ?? base.problem)
      if (r !== null) {
        const cost = (1 - r) * 100
        const verdict = cost <= m.baseline.limitPct ? 'within' : 'over'
        notes.push(`the VCL costs ${cost.toFixed(1)}% against ${base.name} (${verdict} the ${m.baseline.limitPct}% budget)`)
      }
    }
    rows.push({
      id: m.id,
      title: key === m.ours ? m.title : key === m.baseline?.key ? `${m.title} (${m.baseline.label})` : `${m.title} (Node peer)`,
      unit: m.unit,
      left,
      right: theirs,
      ratio: ratioOf(left.samples, theirs.samples, left.problem ?? theirs.problem),
      notes,
    })
  }
  return rows
}

/** Median of the per-round ratios (round i of the left against round i of the right). */
export function ratioOf(left: number[], right: number[], problem: string | undefined): number | null {
  if (problem) return null
  const n = Math.min(left.length, right.length)
  const ratios: number[] = []
  for (let i = 0; i < n; i++) {
    const r = right[i] as number
    if (r > 0) ratios.push((left[i] as number) / r)
  }
  return median(ratios)
}

/** The load generator against the cheapest servers there are: what it can measure at most. */
export async function runCeiling(env: MeasureEnv, started: Started): Promise<Row[]> {
  const base = { id: 0, path: '/ceiling', https: false, theirs: '-', peers: [] }
  const ceilings: Measure[] = [
    {
      ...base,
      title: `ceiling: ${env.gen.name} against nginx return 200`,
      unit: 'req/s',
      kind: 'http',
      expect: { status: 200, bodyBytes: 3 },
      ours: 'nginx-200',
    },
    {
      ...base,
      title: 'ceiling: handshake client against nginx ssl return 200',
      unit: 'handshakes/s',
      kind: 'handshakes',
      https: true,
      expect: { status: 200, bodyBytes: 3 },
      ours: 'nginx-tls',
    },
    {
      ...base,
      title: 'ceiling: fast origin alone (node net)',
      unit: 'req/s',
      kind: 'http',
      expect: { status: 200, bodyBytes: 1024 },
      ours: 'origin',
    },
    {
      ...base,
      title: 'ceiling: websocket client against the echo app alone (ws)',
      unit: 'round trips/s',
      kind: 'ws',
      expect: { status: 200, bodyBytes: 1024 },
      ours: 'app',
    },
  ]
  const rows: Row[] = []
  for (const m of ceilings) {
    const slot = started.slots[m.ours]
    let left: Side
    if (isMissing(slot)) {
      left = emptySide(slot?.name ?? m.ours, slot?.missing ?? 'not started')
      if (slot?.absent) left.absent = true
    } else {
      env.progress.measure(m.title)
      try {
        const wrong = await probe(urlOf({ ...m, path: m.kind === 'handshakes' ? '/' : m.path }, slot), m.expect)
        if (wrong) throw new Error(`${slot.name} ${wrong}`)
        const r = await runOnce(env, m, slot)
        const bad = loadProblem(r)
        left = { name: slot.name, role: 'peer', value: bad ? null : r.rate, p50Ms: r.p50Ms, p99Ms: r.p99Ms, samples: [r.rate] }
        if (bad) left.problem = bad
        left.peakRssKiB = await sumPeak(slot)
      } catch (err) {
        left = emptySide(slot.name, (err as Error).message.split('\n')[0] as string)
      }
    }
    rows.push({ id: 0, title: m.title, unit: m.unit, left, ratio: null, notes: [] })
  }
  return rows
}

function emptySide(name: string, problem: string): Side {
  return { name, role: 'peer', value: null, p50Ms: null, p99Ms: null, samples: [], problem }
}

export async function sumPeak(s: Server): Promise<number> {
  let total = 0
  for (const p of s.procs) total += await p.peakRssKiB()
  return total
}

/** Fills in each row's peak RSS from the servers still running at the end of their group. */
export async function addPeakRss(rows: Row[], started: Started): Promise<void> {
  const byName = new Map<string, number>()
  for (const slot of Object.values(started.slots)) {
    if (!isMissing(slot)) byName.set(slot.name, await sumPeak(slot))
  }
  for (const row of rows) {
    for (const side of [row.left, row.right]) {
      const kib = side ? byName.get(side.name) : undefined
      if (side && kib !== undefined) side.peakRssKiB = kib
    }
  }
}
