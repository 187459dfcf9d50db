#!/usr/bin/env node
/**
 * `npm run test:vtc`: varnish 7.1's own test cases (`../shared/varnish-vtc/tests` beside the
 * repository, or VTC_DIR / --dir) run by Debian's varnishtest against caching-router, which
 * the `varnishd` script next to this file stands in for at the head of PATH. Each case gets
 * its own varnishtest with a time limit, two at a time; the cases listed as passing in
 * expected.json must pass (a regression fails the run), the skipped classes are not run.
 *
 *   node run-vtc.js [--real] [--all] [--dir DIR] [-j N] [-t SECONDS] [--logs DIR] [NAME...]
 *
 * --real runs Debian's varnishd instead (the baseline); --all also runs the skipped classes.
 */
import { mkdir, readdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { type CaseResult, defaultCaseDir, missingPrerequisite, readExpected, repo, runCases } from './vtc-case.js'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    real: { type: 'boolean' },
    all: { type: 'boolean' },
    dir: { type: 'string' },
    j: { type: 'string', short: 'j' },
    t: { type: 'string', short: 't' },
    logs: { type: 'string' },
  },
})

const dir = values.dir !== undefined ? resolve(values.dir) : defaultCaseDir()
const jobs = Number(values.j ?? 2)
const timeout = Number(values.t ?? 60)
const logs = resolve(values.logs ?? join(repo, 'tmp', 'vtc-logs'))

const missing = await missingPrerequisite(dir)
if (missing !== undefined) {
  process.stderr.write(`run-vtc: ${missing}\n`)
  process.exit(2)
}

const expected = await readExpected()
const skipped = new Map<string, string>()
for (const [cls, { cases }] of Object.entries(expected.skip)) for (const c of cases) skipped.set(c, cls)

const all = (await readdir(dir)).filter((f) => f.endsWith('.vtc')).sort()
const chosen = all
  .map((f) => f.slice(0, -4))
  .filter((n) => positionals.length === 0 || positionals.some((p) => n.includes(p)))
  .filter((n) => values.all || values.real || positionals.length > 0 || !skipped.has(n))

await mkdir(logs, { recursive: true })
const results = await runCases(chosen, jobs, { dir, timeout, real: values.real, logs }, (r) => {
  process.stdout.write(`${r.outcome.padEnd(8)} ${r.name} (${r.seconds.toFixed(1)}s)${r.outcome === 'passed' ? '' : `  ${r.why}`}\n`)
})

const passed = new Set(results.filter((r) => r.outcome === 'passed').map((r) => r.name))
const expectedPass = new Set(expected.pass)
const regressions = values.real ? [] : results.filter((r) => expectedPass.has(r.name) && r.outcome !== 'passed').map((r) => r.name)
const newPasses = values.real ? [] : [...passed].filter((n) => !expectedPass.has(n)).sort()
const count = (o: CaseResult['outcome']) => results.filter((r) => r.outcome === o).length
process.stdout.write(
  `\n${values.real ? 'varnishd' : 'caching-router'}: ${results.length} cases run, ${count('passed')} passed, ${count('FAILED')} failed, ` +
    `${count('TIMEOUT')} timed out, ${count('skipped')} skipped by varnishtest; ${all.length - chosen.length} not run (expected.json skip classes or filter). Logs: ${logs}\n`,
)
if (newPasses.length > 0) process.stdout.write(`newly passing (add to expected.json "pass"): ${newPasses.join(' ')}\n`)
if (regressions.length > 0) {
  process.stdout.write(`REGRESSIONS (listed as passing in expected.json): ${regressions.join(' ')}\n`)
  process.exitCode = 1
}
