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
import { spawn } from 'node:child_process'
import { access, mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

// dist/test/vtc/run-vtc.js -> packages/caching-router
const pkg = fileURLToPath(new URL('../../../', import.meta.url))
const repo = resolve(pkg, '../..')
const shimDir = join(pkg, 'test', 'vtc')

interface Expected {
  /** Cases that pass against caching-router today. */
  pass: string[]
  /** Classes of cases not run, each with why and its cases. */
  skip: Record<string, { reason: string; cases: string[] }>
}

interface Result {
  name: string
  outcome: 'passed' | 'FAILED' | 'skipped' | 'TIMEOUT'
  seconds: number
  why: string
}

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

const dir = resolve(values.dir ?? process.env.VTC_DIR ?? join(repo, '..', 'shared', 'varnish-vtc', 'tests'))
const jobs = Number(values.j ?? 2)
const timeout = Number(values.t ?? 60)
const logs = resolve(values.logs ?? join(repo, 'tmp', 'vtc-logs'))

try {
  await access(join(dir, 'b00000.vtc'))
} catch {
  process.stderr.write(
    `run-vtc: no varnish test cases in ${dir}\n` +
      '  (varnish 7.1.1\'s bin/varnishtest/tests; expected at ../shared/varnish-vtc/tests beside the repository; set VTC_DIR or --dir)\n',
  )
  process.exit(2)
}
try {
  await access('/usr/bin/varnishtest')
} catch {
  process.stderr.write('run-vtc: /usr/bin/varnishtest not found (Debian package "varnish")\n')
  process.exit(2)
}

const expected = JSON.parse(await readFile(join(shimDir, 'expected.json'), 'utf8')) as Expected
const skipped = new Map<string, string>()
for (const [cls, { cases }] of Object.entries(expected.skip)) for (const c of cases) skipped.set(c, cls)

const all = (await readdir(dir)).filter((f) => f.endsWith('.vtc')).sort()
const chosen = all
  .map((f) => f.slice(0, -4))
  .filter((n) => positionals.length === 0 || positionals.some((p) => n.includes(p)))
  .filter((n) => values.all || values.real || positionals.length > 0 || !skipped.has(n))

await mkdir(logs, { recursive: true })
const env = {
  ...process.env,
  PATH: values.real ? process.env.PATH : `${shimDir}:${process.env.PATH}`,
  EDGESTACK_NODE: process.execPath,
}

function runCase(name: string): Promise<Result> {
  const started = Date.now()
  return new Promise((resolveCase) => {
    // varnishtest's own -t, and a kill a little later in case it hangs itself.
    const child = spawn('/usr/bin/varnishtest', ['-t', String(timeout), `${name}.vtc`], { cwd: dir, env })
    const out: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => out.push(b))
    const killer = setTimeout(() => child.kill('SIGKILL'), (timeout + 30) * 1000)
    child.on('close', async (code, signal) => {
      clearTimeout(killer)
      const text = Buffer.concat(out).toString('latin1')
      await writeFile(join(logs, `${name}.log`), text)
      const seconds = (Date.now() - started) / 1000
      const first = /^(?:----|\*\*\*\*) +\S+ +(.*(?:FAIL|fail|Assert|Timeout|timeout|expected|EXPECT|Unexpected|Bad|Not true|unknown).*)$/m.exec(text)
      const why = (text.match(/^---- .*$/m)?.[0].replace(/^---- +/, '') ?? first?.[1] ?? '').slice(0, 160)
      const outcome: Result['outcome'] =
        code === 0 ? 'passed' : code === 77 || /skipped/.test(text.split('\n').at(-2) ?? '') ? 'skipped' : signal === 'SIGKILL' || /Timeout|TIMEOUT/.test(why) ? 'TIMEOUT' : 'FAILED'
      resolveCase({ name, outcome, seconds, why })
    })
  })
}

const results: Result[] = []
const queue = [...chosen]
await Promise.all(
  Array.from({ length: Math.max(1, jobs) }, async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      const r = await runCase(name)
      results.push(r)
      process.stdout.write(`${r.outcome.padEnd(8)} ${r.name} (${r.seconds.toFixed(1)}s)${r.outcome === 'passed' ? '' : `  ${r.why}`}\n`)
    }
  }),
)

const passed = new Set(results.filter((r) => r.outcome === 'passed').map((r) => r.name))
const expectedPass = new Set(expected.pass)
const regressions = values.real ? [] : results.filter((r) => expectedPass.has(r.name) && r.outcome !== 'passed').map((r) => r.name)
const newPasses = values.real ? [] : [...passed].filter((n) => !expectedPass.has(n)).sort()
const count = (o: Result['outcome']) => results.filter((r) => r.outcome === o).length
process.stdout.write(
  `\n${values.real ? 'varnishd' : 'caching-router'}: ${results.length} cases run, ${count('passed')} passed, ${count('FAILED')} failed, ` +
    `${count('TIMEOUT')} timed out, ${count('skipped')} skipped by varnishtest; ${all.length - chosen.length} not run (expected.json skip classes or filter). Logs: ${logs}\n`,
)
if (newPasses.length > 0) process.stdout.write(`newly passing (add to expected.json "pass"): ${newPasses.join(' ')}\n`)
if (regressions.length > 0) {
  process.stdout.write(`REGRESSIONS (listed as passing in expected.json): ${regressions.join(' ')}\n`)
  process.exitCode = 1
}
