import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type Daemon, runCli, startDaemon } from './processes.js'
import { freePort } from './ports.js'

const VARNISHD = '/usr/sbin/varnishd'
const hasVarnishd = await access(VARNISHD).then(
  () => true,
  () => false,
)

/** An origin whose answers depend only on the path, so both caches see the same thing. */
function origin(): http.Server {
  return http.createServer((req, res) => {
    const path = req.url ?? '/'
    const set = (k: string, v: string) => res.setHeader(k, v)
    if (path.startsWith('/cookie-set')) set('Set-Cookie', 'a=1')
    if (path.startsWith('/nostore')) set('Cache-Control', 'no-store')
    else if (path.startsWith('/zero')) set('Cache-Control', 'max-age=0')
    else if (path.startsWith('/smaxage')) set('Cache-Control', 's-maxage=60, max-age=0')
    else if (path.startsWith('/expired-epoch')) set('Expires', 'Thu, 01 Jan 1970 00:00:00 GMT')
    else if (path.startsWith('/expired')) set('Expires', 'Sat, 01 Jan 2000 00:00:00 GMT')
    else if (path.startsWith('/private')) set('Cache-Control', 'private')
    else if (path.startsWith('/redirect')) res.statusCode = 302
    else set('Cache-Control', 'max-age=60')
    if (path.startsWith('/vary')) set('Vary', 'Accept-Language')
    set('ETag', '"same"')
    if (path.startsWith('/missing')) res.statusCode = 404
    if (path.startsWith('/error')) res.statusCode = 500
    res.end(`${req.method} ${path} lang=${req.headers['accept-language'] ?? '-'}\n0123456789\n`)
  })
}

interface Step {
  method?: string
  path: string
  headers?: Record<string, string>
}

// Each path is new to the cache where it first appears; the sequence exercises builtin.vcl.
const STEPS: Step[] = [
  { path: '/a' },
  { path: '/a' },
  { path: '/a', headers: { Cookie: 'x=1' } },
  { path: '/a', headers: { Authorization: 'Basic eDp5' } },
  { path: '/cookie-set' },
  { path: '/cookie-set' },
  { path: '/nostore' },
  { path: '/nostore' },
  { path: '/private' },
  { path: '/private' },
  { path: '/zero' },
  { path: '/zero' },
  { path: '/smaxage' },
  { path: '/smaxage' },
  { path: '/expired' },
  { path: '/expired' },
  { path: '/vary', headers: { 'Accept-Language': 'en' } },
  { path: '/vary', headers: { 'Accept-Language': 'fr' } },
  { path: '/vary', headers: { 'Accept-Language': 'en' } },
  { method: 'HEAD', path: '/head' },
  { path: '/head' },
  { path: '/missing' },
  { path: '/missing' },
  { path: '/error' },
  { path: '/error' },
  { path: '/a', headers: { Range: 'bytes=0-3' } },
  { path: '/a', headers: { 'If-None-Match': '"same"' } },
  { path: '/q?x=1' },
  { path: '/q?x=1' },
  { path: '/q?x=2' },
  { method: 'OPTIONS', path: '/opt' },
  { path: '/host', headers: { Host: 'one.example' } },
  { path: '/host', headers: { Host: 'ONE.example' } },
  { path: '/redirect' },
  { path: '/redirect' },
  // Where we are stricter on purpose (KNOWN below).
  { path: '/expired-epoch' },
  { path: '/expired-epoch' },
  { path: '/inv' },
  { method: 'POST', path: '/inv' },
  { path: '/inv' },
]

/**
 * The differences we mean to have, each a place where varnishd departs from RFC 9111:
 * - an Expires of the epoch reads as "no Expires" in varnishd (0 is its "absent"), so it
 *   caches for default_ttl; §5.3 says a past date is already expired.
 * - varnishd keeps serving a URL after a successful POST to it; §4.4 says invalidate it.
 * - a 500 with `max-age=60` is not stored by varnishd (its fixed status list); §3 lets a cache
 *   store a response of any status with explicit freshness.
 */
const KNOWN = [
  'GET /error {}: varnishd miss, ours hit',
  'GET /expired-epoch {}: varnishd hit, ours miss',
  'GET /inv {}: varnishd hit, ours miss',
]

interface Outcome {
  status: number
  body: string
  hit: boolean
}

function send(port: number, step: Step): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: step.method ?? 'GET', path: step.path, headers: step.headers, agent: false },
      (res) => {
        let body = ''
        res.setEncoding('latin1')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body, hit: String(res.headers['x-varnish'] ?? '').includes(' ') }),
        )
      },
    )
    req.on('error', reject)
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')))
    req.end()
  })
}


async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy()
        resolve(true)
      })
      c.on('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`nothing listening on ${port}`)
}

describe('differential: caching-router -b against varnishd -b', { skip: hasVarnishd ? false : `${VARNISHD} not installed` }, () => {
  let server: http.Server
  let varnishd: ChildProcess | undefined
  let varnishPort = 0
  let router: Daemon | undefined
  let workdir = ''

  before(async () => {
    server = origin()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const backend = `127.0.0.1:${(server.address() as AddressInfo).port}`
    workdir = await mkdtemp(join(tmpdir(), 'router-varnishd-'))
    varnishPort = await freePort()
    // -j none: run as this user in a temporary -n directory; -T none: no management port.
    varnishd = spawn(
      VARNISHD,
      ['-F', '-j', 'none', '-n', workdir, '-a', `127.0.0.1:${varnishPort}`, '-b', backend, '-s', 'malloc,16m', '-T', 'none'],
      { stdio: 'ignore' },
    )
    await waitForPort(varnishPort)
    router = await startDaemon('caching-router', ['-a', '127.0.0.1:0', '-b', backend, '-s', 'malloc,16m'])
  })

  after(async () => {
    await router?.stop()
    if (varnishd && varnishd.exitCode === null) {
      const exited = once(varnishd, 'exit')
      varnishd.kill('SIGTERM')
      const timer = setTimeout(() => varnishd?.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
    server?.closeAllConnections()
    await new Promise<void>((resolve) => server?.close(() => resolve()))
    if (workdir) await rm(workdir, { recursive: true, force: true })
  })

  test('caching-router stat -j: varnishstat -j\'s layout, and its description, flag and format for every counter both keep', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'router-stat-j-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const secret = join(dir, 'secret')
    await writeFile(secret, 'stat secret\n')
    const d = await startDaemon('caching-router', ['-a', '127.0.0.1:0', '-b', '127.0.0.1:1', '-T', '127.0.0.1:0', '-S', secret])
    t.after(() => d.stop())
    for (let i = 0; i < 500 && !/admin CLI on/.test(d.output()); i++) await new Promise((r) => setTimeout(r, 20))
    const admin = /admin CLI on (127\.0\.0\.1:\d+)/.exec(d.output())?.[1]
    assert.ok(admin, d.output())
    const ours = await runCli('caching-router', ['stat', '-T', admin, '-S', secret, '-j'])
    assert.equal(ours.code, 0, ours.stderr)
    type Stat = { version: number; timestamp: string; counters: Record<string, { description: string; flag: string; format: string; value: number }> }
    const o = JSON.parse(ours.stdout) as Stat
    assert.equal(o.version, 1)
    assert.match(o.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/)
    const names = Object.keys(o.counters)
    assert.ok(names.includes('MAIN.cache_hit') && names.includes('SMA.s0.g_bytes'), names.join(' '))
    const theirs = await new Promise<string>((resolve, reject) =>
      execFile('varnishstat', ['-n', workdir, '-j', ...names.flatMap((n) => ['-f', n])], { timeout: 20_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    )
    const th = JSON.parse(theirs) as Stat
    const shape = (s: Stat, n: string) => {
      const c = s.counters[n]
      return c && { description: c.description, flag: c.flag, format: c.format }
    }
    const differ = names.filter((n) => th.counters[n] !== undefined && JSON.stringify(shape(o, n)) !== JSON.stringify(shape(th, n)))
    assert.deepEqual(differ.map((n) => `${n}: ours ${JSON.stringify(shape(o, n))}, varnishstat ${JSON.stringify(shape(th, n))}`), [])
    assert.ok(Object.keys(th.counters).length >= names.length - 2, `varnishstat knows only ${Object.keys(th.counters).join(' ')}`)
    // The same layout: each program's text is its JSON printed with two-space indents.
    const layout = (text: string) => text.replace(/"timestamp": "[^"]*"/, '"timestamp": T').replace(/"value": \d+/g, '"value": N')
    const reprint = (s: Stat) => layout(`${JSON.stringify(s, null, 2)}\n`)
    assert.equal(layout(ours.stdout), reprint(o))
    assert.equal(layout(theirs), reprint(th))
  })

  test('same status, body and hit/miss for the same requests', async () => {
    const differences: string[] = []
    for (const step of STEPS) {
      const theirs = await send(varnishPort, step)
      const ours = await send(router?.port as number, step)
      const label = `${step.method ?? 'GET'} ${step.path} ${JSON.stringify(step.headers ?? {})}`
      if (theirs.status !== ours.status) differences.push(`${label}: status varnishd ${theirs.status}, ours ${ours.status}`)
      if (theirs.body !== ours.body) differences.push(`${label}: body varnishd ${JSON.stringify(theirs.body)}, ours ${JSON.stringify(ours.body)}`)
      if (theirs.hit !== ours.hit) differences.push(`${label}: varnishd ${theirs.hit ? 'hit' : 'miss'}, ours ${ours.hit ? 'hit' : 'miss'}`)
    }
    assert.deepEqual(differences, KNOWN)
  })
})
