import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { promisify } from 'node:util'
import { get, sleep, startOrigin } from './router-harness.js'
import { type RouterProcess, spawnRouter } from './router-process.js'
import { startVarnishd } from './vcl-varnishd.js'

// Debian's varnishlog, varnishncsa and varnishtop (7.1.1) read the transaction records the
// router writes under -n DIR, as they read varnishd's: grouped by request, the access lines
// the requests made, the same lines varnishd's log gives for the same requests.

const run = promisify(execFile)
const TOOLS = ['/usr/bin/varnishlog', '/usr/bin/varnishncsa', '/usr/bin/varnishtop', '/usr/sbin/varnishd']
const installed = TOOLS.every((p) => existsSync(p))

function needsVarnish(t: TestContext): boolean {
  if (installed) return true
  if (process.env.CI) assert.fail('varnishlog/varnishncsa/varnishtop/varnishd are not installed (apt-get install varnish)')
  t.skip('varnish is not installed: log-record tests NOT run')
  return false
}

/** The child's index lists its Log segment: from here on every request is logged. */
async function childLogReady(dir: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const index = await readFile(join(dir, '_.vsm_child', '_.index'), 'latin1').catch(() => '')
    if (/ Log Log$/m.test(index)) return
    await sleep(100)
  }
  assert.fail('the child never listed its Log segment')
}

/** A tool's output over the whole log (-d: from the head, exit at its end), polled until `done`. */
async function readLog(tool: string, args: string[], done: (out: string) => boolean): Promise<string> {
  let out = ''
  for (let i = 0; i < 40; i++) {
    out = (await run(tool, args, { timeout: 10_000, encoding: 'latin1' })).stdout
    if (done(out)) return out
    // The router writes its records every 10 ms: a reader may come just before them.
    await sleep(100)
  }
  return out
}

async function startLogged(t: TestContext, dir: string, backend: string): Promise<RouterProcess> {
  const router = await spawnRouter(['-n', dir, '-a', '127.0.0.1:0', '-b', backend, '-s', 'malloc,8m'])
  t.after(() => router.stop())
  await childLogReady(dir)
  return router
}

test('varnishlog -g request -q: the requests just made, client and backend records grouped', { timeout: 60_000 }, async (t) => {
  if (!needsVarnish(t)) return
  const dir = await mkdtemp(join(tmpdir(), 'vsl-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const origin = await startOrigin(t, (req, res) => {
    res.setHeader('Cache-Control', 'max-age=300')
    res.end(`body of ${req.url}`)
  })
  const router = await startLogged(t, dir, `${origin.address.host}:${origin.address.port}`)
  const base = `http://127.0.0.1:${router.port}`
  const miss = await get(`${base}/x`, { headers: { 'X-Test': 'one' } })
  const hit = await get(`${base}/x`)
  await get(`${base}/y`)
  const missXid = Number(miss.headers['x-varnish'])
  const [hitXid, objXid] = String(hit.headers['x-varnish']).split(' ').map(Number)

  const out = await readLog('varnishlog', ['-n', dir, '-d', '-g', 'request', '-q', 'ReqURL ~ "/x"'], (o) => o.includes(`>> ${hitXid}`))
  // Two request groups (/x twice), none for /y; the miss's group holds its backend request.
  const groups = out.split(/\n(?=\*\s+<< Request)/).filter((g) => g.startsWith('*'))
  if (groups.length !== 2) {
    const raw = (await run('varnishlog', ['-n', dir, '-d', '-g', 'raw'], { timeout: 10_000, encoding: 'latin1' })).stdout
    assert.fail(`two request groups expected:\n${out}\n--- the raw log:\n${raw}`)
  }
  assert.doesNotMatch(out, /ReqURL\s+\/y/)
  const [g1, g2] = groups as [string, string]
  assert.match(g1, new RegExp(`^\\*\\s+<< Request\\s+>> ${missXid}\\s`))
  assert.match(g1, /^-\s+Begin\s+req \d+ rxreq$/m)
  assert.match(g1, /^-\s+ReqMethod\s+GET$/m)
  assert.match(g1, /^-\s+ReqURL\s+\/x$/m)
  assert.match(g1, /^-\s+ReqHeader\s+X-Test: one$/m)
  assert.match(g1, /^-\s+VCL_call\s+MISS$/m)
  assert.match(g1, new RegExp(`^-\\s+Link\\s+bereq ${objXid} fetch$`, 'm'))
  assert.match(g1, /^-\s+RespStatus\s+200$/m)
  assert.match(g1, new RegExp(`^-\\s+RespHeader\\s+X-Varnish: ${missXid}$`, 'm'))
  assert.match(g1, /^-\s+Timestamp\s+Resp: \d+\.\d{6} \d+\.\d{6} \d+\.\d{6}$/m)
  assert.match(g1, /^-\s+ReqAcct\s+\d+ 0 \d+ \d+ 10 \d+$/m)
  // The backend request, in the same group one level down.
  assert.match(g1, new RegExp(`^\\*\\*\\s+<< BeReq\\s+>> ${objXid}\\s`, 'm'))
  assert.match(g1, new RegExp(`^--\\s+Begin\\s+bereq ${missXid} fetch$`, 'm'))
  assert.match(g1, /^--\s+BereqURL\s+\/x$/m)
  assert.match(g1, new RegExp(`^--\\s+BereqHeader\\s+X-Varnish: ${objXid}$`, 'm'))
  assert.match(g1, /^--\s+VCL_call\s+BACKEND_RESPONSE$/m)
  assert.match(g1, /^--\s+BerespStatus\s+200$/m)
  assert.match(g1, /^--\s+BerespHeader\s+Cache-Control: max-age=300$/m)
  assert.match(g1, /^--\s+End\s*$/m)
  // The hit: its Hit record names the object's vxid, and there is no backend request.
  assert.match(g2, new RegExp(`^\\*\\s+<< Request\\s+>> ${hitXid}\\s`))
  assert.match(g2, new RegExp(`^-\\s+Hit\\s+${objXid} \\d+\\.\\d{6} 10\\.000000 0\\.000000$`, 'm'))
  assert.match(g2, /^-\s+VCL_call\s+HIT$/m)
  assert.doesNotMatch(g2, /BeReq/)
})

/** The same requests, each on a connection of its own, to a router and to varnishd. */
const REQUESTS: Array<{ path: string; headers: Record<string, string> }> = [
  { path: '/a', headers: { 'User-Agent': 'ncsa-test/1', Referer: 'http://ref.example/' } },
  { path: '/a', headers: { 'User-Agent': 'ncsa-test/2' } },
  { path: '/b?q=1', headers: { 'User-Agent': 'ncsa-test/3', Host: 'example.test' } },
  { path: '/missing', headers: { 'User-Agent': 'ncsa-test/4' } },
]
// Every field but %t (the second each request was made) and the vxid: deterministic.
const FORMAT = '%h %l %u "%r" %s %b "%{Referer}i" "%{User-agent}i" %{Varnish:hitmiss}x %{Varnish:handling}x %m %U %q %H'

test('varnishncsa -n: the access lines of the requests just made, as the router logged them and as varnishd logs them', { timeout: 90_000 }, async (t) => {
  if (!needsVarnish(t)) return
  const dir = await mkdtemp(join(tmpdir(), 'vsl-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const origin = await startOrigin(t, (req, res) => {
    if (req.url === '/missing') res.statusCode = 404
    res.setHeader('Cache-Control', 'max-age=300')
    res.end(`body of ${req.url}`)
  })
  const router = await startLogged(t, dir, `${origin.address.host}:${origin.address.port}`)
  const varnishd = await startVarnishd(`vcl 4.1;\nbackend o { .host = "127.0.0.1"; .port = "${origin.address.port}"; }\n`)
  t.after(() => varnishd.stop())
  for (const r of REQUESTS) {
    await get(`http://127.0.0.1:${router.port}${r.path}`, { headers: { Host: 'example.test', ...r.headers } })
    await get(`http://127.0.0.1:${varnishd.port}${r.path}`, { headers: { Host: 'example.test', ...r.headers } })
  }
  const lines = (s: string) => s.split('\n').filter((l) => l !== '')
  const ours = lines(await readLog('varnishncsa', ['-n', dir, '-d', '-F', FORMAT], (o) => lines(o).length >= REQUESTS.length))
  const theirs = lines((await run('varnishncsa', ['-n', varnishd.workdir, '-d', '-F', FORMAT], { encoding: 'latin1' })).stdout)
  assert.equal(ours.length, REQUESTS.length, ours.join('\n'))
  // What the router knows of each request, field by field.
  const handling = ['miss', 'hit', 'miss', 'miss']
  REQUESTS.forEach((r, i) => {
    const [path, query] = r.path.split('?') as [string, string | undefined]
    const status = r.path === '/missing' ? 404 : 200
    const bytes = `body of ${r.path}`.length
    assert.equal(
      ours[i],
      `127.0.0.1 - - "GET http://example.test${r.path} HTTP/1.1" ${status} ${bytes} "${r.headers.Referer ?? '-'}" "${r.headers['User-Agent']}" ${handling[i]} ${handling[i]} GET ${path} ${query === undefined ? '' : `?${query}`} HTTP/1.1`,
    )
  })
  // And varnishd's varnishncsa, for the same requests: the same lines.
  assert.deepEqual(ours, theirs)

  // The default format: the router's own access line for each request is varnishncsa's line
  // from its log (the second each was made aside).
  const noTime = (l: string) => l.replace(/\[[^\]]+\]/, '[T]')
  const own = lines(router.output()).filter((l) => l.startsWith('127.0.0.1 - - ['))
  const fromLog = lines((await run('varnishncsa', ['-n', dir, '-d'], { encoding: 'latin1' })).stdout)
  assert.deepEqual(fromLog.map(noTime), own.map(noTime))
})

test('varnishtop -1 counts the records of the requests made', { timeout: 60_000 }, async (t) => {
  if (!needsVarnish(t)) return
  const dir = await mkdtemp(join(tmpdir(), 'vsl-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const origin = await startOrigin(t, (_req, res) => {
    res.setHeader('Cache-Control', 'max-age=300')
    res.end('x')
  })
  const router = await startLogged(t, dir, `${origin.address.host}:${origin.address.port}`)
  for (let i = 0; i < 5; i++) await get(`http://127.0.0.1:${router.port}/top`)
  const out = await readLog('varnishtop', ['-n', dir, '-1', '-i', 'ReqURL'], (o) => /\b5\.00 ReqURL\s+\/top/.test(o))
  assert.match(out, /^\s*5\.00 ReqURL\s+\/top$/m)
})

test('a varnishlog attached across a child restart prints the new child\'s requests', { timeout: 60_000 }, async (t) => {
  if (!needsVarnish(t)) return
  const dir = await mkdtemp(join(tmpdir(), 'vsl-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const origin = await startOrigin(t, (_req, res) => res.end('x'))
  const router = await startLogged(t, dir, `${origin.address.host}:${origin.address.port}`)
  const base = `http://127.0.0.1:${router.port}`
  const reader: ChildProcess = spawn('varnishlog', ['-n', dir, '-g', 'request', '-i', 'ReqURL'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.after(() => {
    reader.kill()
  })
  let said = ''
  reader.stdout?.setEncoding('latin1').on('data', (s: string) => {
    said += s
  })
  reader.stderr?.setEncoding('latin1').on('data', (s: string) => {
    said += s
  })
  const until = async (what: RegExp, request?: string) => {
    for (let i = 0; i < 100 && !what.test(said); i++) {
      if (request !== undefined && i % 10 === 0) await get(`${base}${request}`).catch(() => undefined)
      await sleep(100)
    }
    assert.match(said, what)
  }
  // The reader starts at the log's tail: requests until one shows.
  await until(/ReqURL\s+\/before/, '/before')
  const index = await readFile(join(dir, '_.vsm_child', '_.index'), 'latin1')
  const first = Number(/^# (\d+) /.exec(index)?.[1])
  process.kill(first, 'SIGKILL')
  // The spare takes over and writes its own set; the reader follows it.
  await until(/Log abandoned[\s\S]*Log reacquired/)
  await until(/ReqURL\s+\/after/, '/after')
  assert.equal(reader.exitCode, null, 'the reader is still running')
  assert.match(said, /ReqURL\s+\/before[\s\S]*Log abandoned[\s\S]*Log reacquired[\s\S]*ReqURL\s+\/after/)
})
