import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { freePort } from './procs.js'

/**
 * CPU per cache hit, concurrent A/B (bench/README.md "CPU per request, concurrent A/B"): the
 * router without `-n`, the router with `-n DIR` (counters and transaction log written), and
 * varnishd (its log always on), each pinned to CPU 0 and loaded at the same time by one wrk
 * each on CPU 1, so all see the same contention. A contender's CPU time is summed over its
 * process tree from /proc/PID/task/N/schedstat (nanoseconds), divided by the requests its wrk
 * completed. Prints each round and the median ratio of each contender to the first.
 *
 *   node bench/dist/cpu-ab.js [--rounds 6] [--seconds 5] [--connections 16] [--no-varnishd] [--workdir-root DIR]
 *
 * --workdir-root: where the -n directories go (default the temporary directory); varnish's
 * documentation puts its working directory on tmpfs, e.g. /dev/shm.
 */

const run = promisify(execFile)
const args = process.argv.slice(2)
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`)
  return i === -1 ? dflt : Number(args[i + 1])
}
const ROUNDS = opt('rounds', 6)
const SECONDS = opt('seconds', 5)
const CONNECTIONS = opt('connections', 16)
const WITH_VARNISHD = !args.includes('--no-varnishd')
const rootAt = args.indexOf('--workdir-root')
const WORKDIR_ROOT = rootAt === -1 ? tmpdir() : (args[rootAt + 1] as string)
const ROUTER = fileURLToPath(new URL('../../packages/caching-router/bin/caching-router.js', import.meta.url))

interface Contender {
  name: string
  port: number
  proc: ChildProcess
}

async function treeCpuNs(pid: number): Promise<number> {
  let total = 0
  const pids = [pid]
  while (pids.length > 0) {
    const p = pids.pop() as number
    const tasks = await readdir(`/proc/${p}/task`).catch(() => [] as string[])
    for (const t of tasks) {
      const stat = await readFile(`/proc/${p}/task/${t}/schedstat`, 'latin1').catch(() => '0')
      total += Number(stat.split(' ')[0])
      const children = await readFile(`/proc/${p}/task/${t}/children`, 'latin1').catch(() => '')
      for (const c of children.split(' ')) if (c.trim() !== '') pids.push(Number(c))
    }
  }
  return total
}

async function wrk(port: number): Promise<number> {
  const { stdout } = await run('taskset', ['-c', '1', 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, `http://127.0.0.1:${port}/hit`])
  const m = /(\d+) requests in/.exec(stdout)
  if (m === null) throw new Error(`wrk: ${stdout}`)
  return Number(m[1])
}

async function waitUp(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/hit`).then(
      (r) => r.arrayBuffer().then(() => r.ok),
      () => false,
    )
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`port ${port} never answered`)
}

async function main(): Promise<void> {
  const body = Buffer.alloc(1024, 'x')
  const origin = createServer((_req, res) => {
    res.setHeader('Cache-Control', 'max-age=3600')
    res.end(body)
  })
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve))
  const backend = `127.0.0.1:${(origin.address() as { port: number }).port}`
  const dir = await mkdtemp(join(WORKDIR_ROOT, 'cpu-ab-'))
  const contenders: Contender[] = []
  const start = async (name: string, cmd: string, argv: string[]) => {
    const port = await freePort()
    const proc = spawn('taskset', ['-c', '0', cmd, ...argv.map((a) => a.replace('PORT', String(port)))], { stdio: 'ignore' })
    contenders.push({ name, port, proc })
  }
  try {
    await start('router', process.execPath, [ROUTER, '-a', '127.0.0.1:PORT', '-b', backend, '-s', 'malloc,64m'])
    await start('router -n', process.execPath, [ROUTER, '-n', join(dir, 'router'), '-a', '127.0.0.1:PORT', '-b', backend, '-s', 'malloc,64m'])
    if (WITH_VARNISHD) await start('varnishd', 'varnishd', ['-F', '-n', join(dir, 'varnishd'), '-a', '127.0.0.1:PORT', '-b', backend, '-s', 'malloc,64m'])
    for (const c of contenders) await waitUp(c.port)
    const ratios: number[][] = contenders.map(() => [])
    for (let round = 0; round < ROUNDS; round++) {
      const before = await Promise.all(contenders.map((c) => treeCpuNs(c.proc.pid as number)))
      const reqs = await Promise.all(contenders.map((c) => wrk(c.port)))
      const after = await Promise.all(contenders.map((c) => treeCpuNs(c.proc.pid as number)))
      const perReq = contenders.map((_, i) => ((after[i] as number) - (before[i] as number)) / (reqs[i] as number) / 1000)
      const base = perReq[0] as number
      perReq.forEach((v, i) => {
        ratios[i]?.push(v / base)
      })
      process.stdout.write(`round ${round + 1}: ${contenders.map((c, i) => `${c.name} ${(perReq[i] as number).toFixed(2)} us/req (${reqs[i]} req)`).join(', ')}\n`)
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
    process.stdout.write(`median CPU per hit relative to ${contenders[0]?.name}: ${contenders.map((c, i) => `${c.name} ${median(ratios[i] as number[]).toFixed(3)}`).join(', ')}\n`)
  } finally {
    for (const c of contenders) c.proc.kill('SIGTERM')
    origin.close()
    await new Promise((r) => setTimeout(r, 500))
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
