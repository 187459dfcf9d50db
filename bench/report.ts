import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Machine } from './machine.js'
import type { Row, Side } from './measure.js'
import type { BenchOptions } from './options.js'

/** The issue's targets, ours/theirs: at least this much (at most, for memory). */
const TARGETS: Record<number, { min?: number; max?: number }> = {
  1: { min: 0.8 },
  2: { min: 0.8 },
  3: { min: 0.8 },
  4: { min: 0.9 },
  5: { min: 1.2 },
  6: { min: 1.0 },
  7: { min: 1.0 },
  8: { min: 1.0 },
  9: { max: 3.0 },
  10: { min: 0.9 },
  12: { min: 1.0 },
  14: { min: 0.8 },
  15: { min: 1.0 },
  16: { min: 1.0 },
  17: { min: 1.0 },
  18: { min: 1.0 },
}

export interface Report {
  startedAt: string
  elapsedS: number
  quick: boolean
  options: Omit<BenchOptions, 'help'>
  machine: Machine
  rows: Row[]
}

function num(v: number | null | undefined): string {
  if (v === null || v === undefined) return '-'
  if (v >= 1000) return Math.round(v).toLocaleString('en-US')
  if (v >= 100) return v.toFixed(0)
  if (v >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

function cell(s: Side | undefined, unit: string): string {
  if (!s) return '-'
  if (s.value === null) return `${s.name}: n/a`
  return `${s.name}: ${num(s.value)} ${unit}`
}

function latency(s: Side | undefined): string {
  if (!s || s.p50Ms === null || s.p99Ms === null) return '-'
  return `${num(s.p50Ms)} / ${num(s.p99Ms)} ms`
}

function rss(s: Side | undefined): string {
  return s?.peakRssKiB ? `${(s.peakRssKiB / 1024).toFixed(0)} MiB` : '-'
}

/**
 * A quick run is a smoke run: one second per contender times the JIT warming up, not the
 * daemons (scenarios 1, 3 and 7 read 0.3x-0.6x quick and over 1x full on the same idle
 * machine), so it states the target and gives no verdict.
 */
function target(row: Row, smoke: boolean): string {
  const t = TARGETS[row.id]
  if (!t || row.left.role !== 'ours') return ''
  const want = t.min !== undefined ? `>= ${t.min}` : `<= ${t.max}`
  if (smoke) return `${want} (smoke run: no verdict)`
  if (row.ratio === null) return want
  const met = t.min !== undefined ? row.ratio >= t.min : row.ratio <= (t.max as number)
  return `${want} ${met ? 'met' : 'not met'}`
}

/** The table the issue asks for, as Markdown: readable in a terminal and in RESULTS.md. */
export function table(rows: Row[], opts: { smoke: boolean }): { table: string; notes: string[] } {
  const notes: string[] = []
  const lines = [
    '| # | scenario | ours | theirs | ours/theirs | target | p50 / p99 ours | p50 / p99 theirs | peak RSS (ours or peer) | notes |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ]
  for (const row of rows) {
    const refs: string[] = []
    // The same note on several rows ("started from flags") gets one number.
    const add = (text: string) => {
      let n = notes.indexOf(text)
      if (n === -1) n = notes.push(text) - 1
      if (!refs.includes(`[${n + 1}]`)) refs.push(`[${n + 1}]`)
    }
    for (const s of [row.left, row.right]) if (s?.problem) add(s.absent ? `skipped: ${s.problem}` : `${s.name}: ${s.problem}`)
    for (const n of row.notes) add(n)
    lines.push(
      `| ${row.id || '-'} | ${row.title} | ${cell(row.left, row.unit)} | ${cell(row.right, row.unit)} | ${
        row.ratio === null ? '-' : `${row.ratio.toFixed(2)}x`
      } | ${target(row, opts.smoke)} | ${latency(row.left)} | ${latency(row.right)} | ${rss(row.left)} | ${refs.join(' ')} |`,
    )
  }
  return { table: lines.join('\n'), notes }
}

function machineLines(m: Machine): string[] {
  const versions = Object.entries(m.versions)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')
  return [
    `- ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.kernel}`,
    `- Node ${m.node}; ${versions}; load generator ${m.loadGenerator}`,
    m.serverCpus === undefined
      ? '- not pinned (one CPU or no taskset)'
      : `- servers pinned to CPU ${m.serverCpus}, load generator and bench clients to CPU ${m.loadCpus}`,
  ]
}

export function markdown(r: Report): string {
  const { table: t, notes } = table(r.rows, { smoke: r.quick })
  const o = r.options
  const out = [
    '# edgestack bench results',
    '',
    r.quick
      ? '> **SMOKE RUN** (`--quick`: one round of 1 s per contender, a short burst as warm-up, few idle connections). It proves the harness runs end to end and gives no verdicts: one second measures the JIT warming up, not the daemons. The full run (`npm run bench` on a quiet machine) writes bench/RESULTS.md.'
      : '> Full run. Numbers are medians over the rounds; the ratio is the median of the per-round ratios.',
    '',
    `Run ${r.startedAt}, ${r.elapsedS.toFixed(0)} s: ${o.connections} connections, ${o.durationS} s per measurement, ${
      o.warmupS > 0 ? `${o.warmupS} s warm-up` : 'burst warm-up'
    }, ${o.rounds} round(s) alternating ours and theirs, ${o.idle} idle connections, stunnel.conf \`debug = ${o.stunnelDebug}\`.`,
    '',
    '## Machine',
    '',
    ...machineLines(r.machine),
    '',
    '## Results',
    '',
    'Throughput is higher-better; scenario 9 is KiB of resident memory per idle connection, lower-better.',
    '',
    t,
    '',
    ...(notes.length > 0 ? ['### Notes', '', ...notes.map((n, i) => `${i + 1}. ${n}`), ''] : []),
    'Rerun: `npm run bench` (full) or `npm run bench -- --quick`; see bench/README.md.',
    '',
  ]
  return out.join('\n')
}

/**
 * bench/results/<time>.json (git-ignored) and bench/RESULTS.md; a smoke run writes its table
 * beside its JSON instead, so it never replaces the committed full run.
 */
export async function writeReport(benchDir: string, r: Report): Promise<{ json: string; md: string }> {
  const resultsDir = join(benchDir, 'results')
  await mkdir(resultsDir, { recursive: true })
  const stem = join(resultsDir, `${r.startedAt.replace(/[:.]/g, '-')}${r.quick ? '-quick' : ''}`)
  const json = `${stem}.json`
  await writeFile(json, `${JSON.stringify(r, null, 2)}\n`)
  const md = r.quick ? `${stem}.md` : join(benchDir, 'RESULTS.md')
  await writeFile(md, markdown(r))
  return { json, md }
}
