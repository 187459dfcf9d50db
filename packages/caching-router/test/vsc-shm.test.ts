import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { promisify } from 'node:util'
import { get, sleep, startOrigin } from './router-harness.js'
import { ROUTER_CLI, spawnRouter } from './router-process.js'

// Debian's varnishstat and varnishlog (7.1.1) read the router's `-n DIR`: the counters the
// clients caused, in the shape prometheus_varnish_exporter parses, across a child restart.

const run = promisify(execFile)
const VARNISHSTAT = '/usr/bin/varnishstat'
const VARNISHLOG = '/usr/bin/varnishlog'
const installed = existsSync(VARNISHSTAT) && existsSync(VARNISHLOG)

function needsVarnish(t: TestContext): boolean {
  if (installed) return true
  if (process.env.CI) assert.fail('varnishstat/varnishlog are not installed (apt-get install varnish): cannot read the shared memory')
  t.skip('varnishstat is not installed: shared-memory tests NOT run')
  return false
}

interface Counter {
  description: string
  flag: string
  format: string
  value: number
}

async function statJson(dir: string): Promise<Record<string, Counter>> {
  const { stdout } = await run(VARNISHSTAT, ['-n', dir, '-j'])
  const doc = JSON.parse(stdout) as { version: number; timestamp: string; counters: Record<string, Counter> }
  // varnishstat 7.1's -j (what prometheus_varnish_exporter reads): version 1, counters under "counters".
  assert.equal(doc.version, 1)
  assert.match(doc.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/)
  return doc.counters
}

/** Polls varnishstat until `done` holds (the router writes its counters every 250 ms); at most 50 reads. */
async function statUntil(dir: string, done: (c: Record<string, Counter>) => boolean): Promise<Record<string, Counter>> {
  let last: Record<string, Counter> = {}
  for (let i = 0; i < 50; i++) {
    last = await statJson(dir)
    if (done(last)) return last
    await sleep(100)
  }
  return last
}

const value = (c: Record<string, Counter>, name: string) => c[name]?.value

async function childPid(dir: string): Promise<number> {
  const index = await readFile(join(dir, '_.vsm_child', '_.index'), 'latin1')
  return Number(/^# (\d+) /.exec(index)?.[1])
}

test('varnishstat -1 and -j show the counts the clients caused', { timeout: 60_000 }, async (t) => {
  if (!needsVarnish(t)) return
  const dir = await mkdtemp(join(tmpdir(), 'vsc-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const origin = await startOrigin(t, (_req, res) => {
    res.setHeader('Cache-Control', 'max-age=300')
    res.end('hello')
  })
  const router = await spawnRouter(['-n', dir, '-a', '127.0.0.1:0', '-b', `${origin.address.host}:${origin.address.port}`, '-s', 'malloc,8m'])
  t.after(() => router.stop())
  const base = `http://127.0.0.1:${router.port}`
  // Load: 60 requests, 10 at a time, on two URLs: two misses, 58 hits.
  const N = 60
  for (let i = 0; i < N; i += 10) {
    await Promise.all(Array.from({ length: 10 }, (_, j) => get(`${base}/${(i + j) % 2 === 0 ? 'a' : 'b'}`)))
  }
  const c = await statUntil(dir, (s) => (value(s, 'MAIN.client_req') ?? 0) >= N)
  assert.equal(value(c, 'MAIN.client_req'), N)
  assert.equal(value(c, 'MAIN.cache_miss'), 2)
  assert.equal(value(c, 'MAIN.cache_hit'), N - 2)
  assert.equal(value(c, 'MAIN.backend_req'), 2)
  assert.equal(value(c, 'MAIN.n_object'), 2)
  assert.equal(value(c, 'MAIN.s_resp_bodybytes'), N * 'hello'.length)
  assert.equal(value(c, 'VBE.boot.default.req'), 2)
  assert.ok((value(c, 'MAIN.sess_conn') ?? 0) >= 1)
  assert.ok((value(c, 'SMA.s0.g_bytes') ?? 0) > 0)
  // The descriptors varnishstat read from our StatDoc segments, as varnishd 7.1.1's.
  assert.deepEqual(c['MAIN.cache_hit'], { description: 'Cache hits', flag: 'c', format: 'i', value: N - 2 })
  assert.deepEqual({ ...c['MAIN.n_object'], value: 0 }, { description: 'object structs made', flag: 'g', format: 'i', value: 0 })
  assert.equal(c['MAIN.uptime']?.format, 'd')
  assert.equal(c['SMA.s0.g_space']?.format, 'B')
  // prometheus_varnish_exporter (varnishstat -j, version 1): each counter a description, a
  // flag, a format and an integer value; the name GROUP[.IDENT].NAME.
  for (const [name, counter] of Object.entries(c)) {
    assert.match(name, /^(MAIN|SMA|VBE)\.[\w.]+$/)
    assert.equal(typeof counter.description, 'string')
    assert.match(counter.flag, /^[cgb]$/)
    assert.match(counter.format, /^[iBdb]$/)
    assert.ok(Number.isSafeInteger(counter.value))
  }

  // -1: the same counts, one counter a line; -f selects.
  const one = (await run(VARNISHSTAT, ['-n', dir, '-1'])).stdout
  const row = (name: string) => Number(new RegExp(`^${name.replaceAll('.', '\\.')}\\s+(\\d+)`, 'm').exec(one)?.[1])
  assert.equal(row('MAIN.client_req'), N)
  assert.equal(row('MAIN.cache_hit'), N - 2)
  const hit = (await run(VARNISHSTAT, ['-n', dir, '-1', '-f', 'MAIN.cache_hit'])).stdout.trim().split('\n')
  assert.equal(hit.length, 1)
  assert.match(hit[0] as string, /^MAIN\.cache_hit\s+58\s/)
})

test('a reader attached while the child restarts keeps working: new child segment, index updated', { timeout: 60_000 }, async (t) => {
  if (!needsVarnish(t)) return
  const dir = await mkdtemp(join(tmpdir(), 'vsc-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const origin = await startOrigin(t, (_req, res) => {
    res.setHeader('Cache-Control', 'max-age=300')
    res.end('x')
  })
  const router = await spawnRouter(['-n', dir, '-a', '127.0.0.1:0', '-b', `${origin.address.host}:${origin.address.port}`])
  t.after(() => router.stop())
  const base = `http://127.0.0.1:${router.port}`
  for (let i = 0; i < 5; i++) await get(`${base}/r`)
  await statUntil(dir, (s) => value(s, 'MAIN.client_req') === 5)

  const reader: ChildProcess = spawn(VARNISHLOG, ['-n', dir, '-g', 'raw'], { stdio: ['ignore', 'ignore', 'pipe'] })
  t.after(() => {
    reader.kill()
  })
  let said = ''
  reader.stderr?.setEncoding('utf8').on('data', (s: string) => {
    said += s
  })
  const first = await childPid(dir)
  process.kill(first, 'SIGKILL')
  let second = first
  for (let i = 0; i < 100 && (second === first || Number.isNaN(second)); i++) {
    await sleep(100)
    second = await childPid(dir).catch(() => Number.NaN)
  }
  assert.notEqual(second, first, 'a new child wrote its own index')
  for (let i = 0; i < 3; i++) await get(`${base}/r`)
  // The new child's counters, from zero (its cache is new: one miss, then hits).
  const c = await statUntil(dir, (s) => value(s, 'MAIN.client_req') === 3)
  assert.equal(value(c, 'MAIN.client_req'), 3)
  assert.equal(value(c, 'MAIN.cache_miss'), 1)
  // varnishlog followed the log across the restart, as it does varnishd's.
  for (let i = 0; i < 50 && !said.includes('Log reacquired'); i++) await sleep(100)
  assert.equal(reader.exitCode, null, 'the reader is still running')
  assert.match(said, /Log abandoned[\s\S]*Log reacquired/)
})

test('-n DIR the router cannot write: one line, exit 1, at start', { timeout: 30_000 }, async (t) => {
  const parent = await mkdtemp(join(tmpdir(), 'vsc-ro-'))
  t.after(() => rm(parent, { recursive: true, force: true }))
  // root writes through any mode, and nobody may not reach the node binary (CI keeps it
  // under /root): as root the directory is one whose parent is a regular file.
  const asRoot = process.getuid?.() === 0
  let dir = join(parent, 'ro')
  if (asRoot) {
    await writeFile(join(parent, 'file'), '')
    dir = join(parent, 'file', 'ro')
  } else {
    await mkdir(dir)
    await chmod(dir, 0o555)
  }
  const child = spawn(process.execPath, [ROUTER_CLI, '-n', dir, '-a', '127.0.0.1:0', '-b', '127.0.0.1:9'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  // A router that does not refuse the directory would serve on: the test ends it.
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  let out = ''
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out += s
  })
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    out += s
  })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  assert.equal(code, 1, out)
  const lines = out.trim().split('\n')
  assert.equal(lines.length, 1, out)
  assert.match(lines[0] as string, /^caching-router: -n .*ro.*: .*(EACCES|ENOTDIR)/)
  assert.equal(existsSync(join(dir, '_.vsm_mgt')), false)
})
