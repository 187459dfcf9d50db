/**
 * One varnish test case run by Debian's varnishtest against caching-router: the `varnishd`
 * script beside this file goes first on PATH, so varnishtest's `varnishd -d -M ...` starts
 * the router. Shared by `npm run test:vtc` (every case, a report) and vtc.test.ts (the
 * expected passes, in `npm test`).
 */
import { spawn } from 'node:child_process'
import { access, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// dist/test/vtc/vtc-case.js -> packages/caching-router
const pkg = fileURLToPath(new URL('../../../', import.meta.url))
export const repo = resolve(pkg, '../..')
/** The source folder (not dist): the shim script and expected.json are not compiled. */
export const shimDir = join(pkg, 'test', 'vtc')
export const VARNISHTEST = '/usr/bin/varnishtest'

export interface Expected {
  /** Cases that pass against caching-router today. */
  pass: string[]
  /** Classes of cases not run, each with why and its cases. */
  skip: Record<string, { reason: string; cases: string[] }>
}

export interface CaseResult {
  name: string
  outcome: 'passed' | 'FAILED' | 'skipped' | 'TIMEOUT'
  seconds: number
  /** varnishtest's first failure line. */
  why: string
  /** varnishtest's whole output. */
  log: string
}

/** varnish 7.1.1's bin/varnishtest/tests: VTC_DIR, else ../shared/varnish-vtc/tests beside the repository. */
export function defaultCaseDir(): string {
  return resolve(process.env.VTC_DIR ?? join(repo, '..', 'shared', 'varnish-vtc', 'tests'))
}

/** Why the cases cannot run here (no varnishtest, no case folder), or undefined. */
export async function missingPrerequisite(dir: string): Promise<string | undefined> {
  try {
    await access(VARNISHTEST)
  } catch {
    return `${VARNISHTEST} not found (Debian package "varnish")`
  }
  try {
    await access(join(dir, 'b00000.vtc'))
  } catch {
    return `no varnish test cases in ${dir} (varnish 7.1.1's bin/varnishtest/tests; set VTC_DIR)`
  }
  return undefined
}

export async function readExpected(): Promise<Expected> {
  return JSON.parse(await readFile(join(shimDir, 'expected.json'), 'utf8')) as Expected
}

export interface CaseOptions {
  dir: string
  /** varnishtest's own -t, in seconds; the process is killed 15 s later if it hangs itself. */
  timeout: number
  /** Run Debian's varnishd instead of the router (the baseline). */
  real?: boolean
  /** Where to write `NAME.log`, if anywhere. */
  logs?: string
}

export function runCase(name: string, opts: CaseOptions): Promise<CaseResult> {
  const started = Date.now()
  const env = {
    ...process.env,
    PATH: opts.real ? process.env.PATH : `${shimDir}:${process.env.PATH}`,
    EDGESTACK_NODE: process.execPath,
  }
  return new Promise((resolveCase) => {
    const child = spawn(VARNISHTEST, ['-t', String(opts.timeout), `${name}.vtc`], { cwd: opts.dir, env })
    const out: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => out.push(b))
    const killer = setTimeout(() => child.kill('SIGKILL'), (opts.timeout + 15) * 1000)
    child.on('close', async (code, signal) => {
      clearTimeout(killer)
      const log = Buffer.concat(out).toString('latin1')
      if (opts.logs !== undefined) await writeFile(join(opts.logs, `${name}.log`), log)
      const seconds = (Date.now() - started) / 1000
      const why = (log.match(/^---- .*$/m)?.[0].replace(/^---- +/, '') ?? '').slice(0, 160)
      // varnishtest exits 77 for a case whose `feature` line this machine lacks.
      const outcome: CaseResult['outcome'] =
        code === 0 ? 'passed' : code === 77 ? 'skipped' : signal === 'SIGKILL' || /Timeout|TIMEOUT/.test(why) ? 'TIMEOUT' : 'FAILED'
      resolveCase({ name, outcome, seconds, why, log })
    })
  })
}

/** Runs `names` `jobs` at a time, calling `done` as each finishes. */
export async function runCases(names: string[], jobs: number, opts: CaseOptions, done: (r: CaseResult) => void): Promise<CaseResult[]> {
  const results: CaseResult[] = []
  const queue = [...names]
  await Promise.all(
    Array.from({ length: Math.max(1, jobs) }, async () => {
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
        const r = await runCase(name, opts)
        results.push(r)
        done(r)
      }
    }),
  )
  return results
}
