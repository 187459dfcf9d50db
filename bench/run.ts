#!/usr/bin/env node
// `npm run bench`: ours against stunnel, varnishd, nginx and the Node peers, in one run.
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runMain, UsageError } from '@edgestack/common'
import { ensureDevCertificates } from '@edgestack/tls-terminator'
import { findPrograms, startCeiling } from './groups.js'
import { runIdle } from './idle.js'
import { type BenchContext, PROGRAMS, type Program, stopAll } from './layers/server.js'
import { pickLoadGenerator } from './load/http-load.js'
import { cpuSplit, describeMachine } from './machine.js'
import { addPeakRss, type MeasureEnv, type Row, runCeiling, runMeasure } from './measure.js'
import { HELP, parseOptions } from './options.js'
import { Progress } from './progress.js'
import { type Report, table, writeReport } from './report.js'
import { GROUPS, ROOT_FILES, TEXT_FILES } from './scenarios.js'
import { REPO } from './templates.js'

const BENCH_DIR = fileURLToPath(new URL('../', import.meta.url))

/** The document root both static servers read: the scenario files, world-readable for nginx's workers. */
async function makeRoot(dir: string): Promise<string> {
  const root = join(dir, 'root')
  await mkdir(root)
  for (const [name, size] of Object.entries(ROOT_FILES)) await writeFile(join(root, name), Buffer.alloc(size, 'b'))
  await mkdir(join(root, 'text'))
  for (const [name, size] of Object.entries(TEXT_FILES)) await writeFile(join(root, name), stylesheet(size))
  await chmod(dir, 0o755)
  await chmod(root, 0o755)
  return root
}

/** `size` bytes of rules that vary as a real stylesheet's do (selectors, colours, lengths). */
function stylesheet(size: number): Buffer {
  let css = ''
  for (let i = 0; css.length < size; i++) {
    css += `.c${(i * 7919) % 1000}-${i % 13} > a:hover { color: #${((i * 2654435761) >>> 8).toString(16).padStart(6, '0').slice(0, 6)}; margin: ${i % 17}px ${(i * 3) % 11}em; }\n`
  }
  return Buffer.from(css.slice(0, size))
}

runMain('bench', async () => {
  const opts = parseOptions(process.argv.slice(2), process.env)
  // Scenario 9 is the idle-connections measurement (idle.ts), outside the groups.
  const known = new Set([...GROUPS.flatMap((g) => g.measures.map((m) => m.id)), 9])
  const unknown = opts.only.filter((id) => !known.has(id))
  if (unknown.length > 0) throw new UsageError(`--only: no scenario ${unknown.join(', ')} (there are ${[...known].sort((a, b) => a - b).join(', ')})`)
  if (opts.help) {
    process.stdout.write(HELP)
    return
  }
  const progress = new Progress()
  const startedAt = new Date().toISOString()
  const programs = await findPrograms(opts.without)
  for (const p of Object.keys(PROGRAMS) as Program[]) {
    if (!programs.path[p]) progress.note(`bench: ${programs.why(p)}; the scenarios comparing with it are skipped`)
  }
  const gen = await pickLoadGenerator(opts.loadGenerator)
  if (gen.name !== 'wrk') progress.note('bench: wrk is not installed (apt-get install wrk); using autocannon, which may be the bottleneck')
  const split = await cpuSplit()
  const machine = await describeMachine(programs, gen, split)
  const dir = await mkdtemp(join(tmpdir(), 'edgestack-bench-'))
  const interrupted = (signal: NodeJS.Signals) => {
    progress.note(`bench: ${signal}, stopping what it started`)
    void stopAll().finally(() => process.exit(130))
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  // A run that fails part-way keeps its logs too.
  let keepLogs = true
  try {
    // The repository's dev certificate (RSA 2048, as the issue's stunnel figures were measured with).
    const { files } = await ensureDevCertificates(join(REPO, '.certs'))
    const ctx: BenchContext = {
      dir,
      root: await makeRoot(dir),
      cert: files.cert,
      key: files.key,
      ...split,
      oursFrom: opts.oursFrom,
      stunnelDebug: opts.stunnelDebug,
    }
    const env: MeasureEnv = { ctx, opts, gen, progress }
    const want = (id: number) => opts.only.length === 0 || opts.only.includes(id)
    const rows: Row[] = []
    const selected = GROUPS.flatMap((g) => g.measures.filter((m) => want(m.id)))
    const total = 4 + selected.reduce((n, m) => n + (2 + (m.baseline ? 1 : 0) + m.peers.length) * opts.rounds, 0) + (want(9) ? 6 : 0)
    progress.expect(total)
    // Per measurement: warm-up, run, and about a second of probes and process start-up.
    const minutes = (total * (Math.max(1, opts.warmupS) + opts.durationS + 1)) / 60
    progress.note(`bench: ${total} measurements, about ${Math.ceil(minutes)} min${opts.quick ? '' : ' (plus the idle connections)'}`)

    progress.step('ceilings')
    const ceiling = await startCeiling(ctx, programs)
    try {
      rows.push(...(await runCeiling(env, ceiling)))
    } finally {
      await ceiling.stop()
    }
    for (const group of GROUPS) {
      const measures = group.measures.filter((m) => want(m.id))
      if (measures.length === 0) continue
      progress.step(`starting ${group.name} servers`)
      const started = await group.start(ctx, programs)
      try {
        const groupRows: Row[] = []
        for (const m of measures) groupRows.push(...(await runMeasure(env, m, started)))
        await addPeakRss(groupRows, started)
        rows.push(...groupRows)
      } finally {
        await started.stop()
      }
    }
    if (want(9)) rows.push(...(await runIdle(env, programs)))
    progress.done()

    const { help: _help, ...options } = opts
    const report: Report = { startedAt, elapsedS: progress.elapsedS(), quick: opts.quick, options, machine, rows }
    const { table: t, notes } = table(rows, { smoke: opts.quick })
    const smoke = opts.quick ? 'SMOKE RUN (--quick): no verdicts; `npm run bench` measures.\n' : ''
    process.stdout.write(`\n${smoke}${t}\n\n${notes.map((n, i) => `[${i + 1}] ${n}`).join('\n')}\n\n`)
    const written = await writeReport(BENCH_DIR, report)
    process.stdout.write(`wrote ${written.md} and ${written.json} (${report.elapsedS.toFixed(0)} s)\n`)
    keepLogs = rows.some((r) => [r.left, r.right].some((s) => s?.problem !== undefined && !s.absent))
  } finally {
    await stopAll()
    if (keepLogs) process.stderr.write(`logs and generated configs kept in ${dir}\n`)
    else await rm(dir, { recursive: true, force: true })
  }
})
