import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdir, readFile } from 'node:fs/promises'
import net from 'node:net'
import { describe, test } from 'node:test'
import { fetchRaw } from './client.js'
import { LAYERS, missingProgram } from './layers.js'
import { accepts, freePort } from './ports.js'
import { groupAlive, REPO } from './processes.js'

const START = `${REPO}scripts/dist/start.js`

interface Run {
  child: ChildProcess
  output(): string
  exited: Promise<number | null>
}

function start(args: string[], env: NodeJS.ProcessEnv = process.env): Run {
  const child = spawn(process.execPath, [START, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env })
  let out = ''
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString()
  })
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString()
  })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  // Whatever happens in the test, this run does not outlive it.
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  void exited.then(() => clearTimeout(timer))
  return { child, output: () => out, exited }
}

async function until(run: Run, pattern: RegExp): Promise<void> {
  for (let i = 0; i < 600 && !pattern.test(run.output()); i++) {
    if (run.child.exitCode !== null) break
    await new Promise((r) => setTimeout(r, 50))
  }
  assert.match(run.output(), pattern)
}

/** The processes whose parent is `pid`: the layers npm start launched, each its own group. */
async function childrenOf(pid: number): Promise<number[]> {
  const found: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    // Fields after the command name (which may contain spaces) in parentheses: state, ppid.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    if (ppid === pid) found.push(Number(entry))
  }
  return found
}

const installed = (await Promise.all(LAYERS.map(async (l) => ((await missingProgram(l)) ? undefined : l)))).filter((l) => l !== undefined)
const freePorts = async () => [await freePort(), await freePort(), await freePort(), await freePort()]

describe('npm start', () => {
  test(`--real ${installed.join(',') || '(none installed)'}: prints the URL, serves it, and Ctrl-C leaves nothing behind`, async () => {
    const ports = await freePorts()
    const run = start(['--ports', ports.join(','), ...(installed.length ? ['--real', installed.join(',')] : [])])
    await until(run, /edgestack is up/)
    assert.match(run.output(), new RegExp(`open https://localhost:${ports[0]}/`))
    const pids = await childrenOf(run.child.pid as number)
    assert.equal(pids.length, 4, run.output())
    const ca = await readFile(`${REPO}.certs/ca.crt`, 'utf8')
    const res = await fetchRaw(`https://localhost:${ports[0]}/app.css`, { ca })
    assert.equal(res.status, 200)

    run.child.kill('SIGINT')
    assert.equal(await run.exited, 0, run.output())
    for (const pid of pids) assert.equal(groupAlive(pid), false, `process group ${pid} is still running`)
    for (const port of ports) assert.equal(await accepts(port), false, `port ${port} still accepts`)
  })

  test('a layer that cannot start stops the run with its own words and exit 1, leaving no port open', async (t) => {
    const ports = await freePorts()
    const blocker = net.createServer((s) => s.destroy())
    await new Promise<void>((resolve) => blocker.listen(ports[1], '127.0.0.1', resolve))
    t.after(() => blocker.close())
    const run = start(['--ports', ports.join(','), ...(installed.includes('router') ? ['--real', 'router'] : [])])
    assert.equal(await run.exited, 1, run.output())
    assert.match(run.output(), /Address already in use|EADDRINUSE/)
    assert.match(run.output(), /^start: could not start the stack: router /m)
    for (const port of [ports[0], ports[2], ports[3]]) assert.equal(await accepts(port as number), false, `port ${port} still accepts`)
  })

  test('--app-instances 2: two apps on the app port and the next, the redis-server they share; Ctrl-C leaves nothing', async () => {
    // The app ports must be consecutive: two from this suite's own range, checked free.
    const app = 24500
    for (const p of [app, app + 1]) assert.equal(await accepts(p), false, `port ${p} is taken`)
    // The fifth: the router's PROXY listener, which config/stunnel-proxy.conf connects to.
    const ports = [await freePort(), await freePort(), await freePort(), app, await freePort()]
    const run = start(['--ports', ports.join(','), '--app-instances', '2'])
    await until(run, /edgestack is up/)
    assert.equal(await accepts(ports[4] as number), true, 'the router listens for PROXY from the TLS layer')
    assert.match(run.output(), new RegExp(`2 app instances on ports ${app}, ${app + 1}, sharing redis on 127\\.0\\.0\\.1:\\d+`))
    assert.match(run.output(), /socket\.io sharded adapter/)
    const pids = await childrenOf(run.child.pid as number)
    assert.equal(pids.length, 6, run.output())
    for (const p of [app, app + 1]) assert.equal((await fetchRaw(`http://127.0.0.1:${p}/healthz`)).status, 200)
    run.child.kill('SIGINT')
    assert.equal(await run.exited, 0, run.output())
    for (const pid of pids) assert.equal(groupAlive(pid), false, `process group ${pid} is still running`)
    for (const port of [...ports, app + 1]) assert.equal(await accepts(port), false, `port ${port} still accepts`)
  })

  test('--app-instances 2 without redis-server: one line naming the package, exit 1, nothing started', async () => {
    const ports = await freePorts()
    const run = start(['--ports', ports.join(','), '--app-instances', '2'], { ...process.env, EDGESTACK_REDIS_SERVER: '/nonexistent/redis-server' })
    assert.equal(await run.exited, 1, run.output())
    assert.equal(run.output(), 'start: /nonexistent/redis-server is not installed: apt-get install redis-server\n')
    for (const port of ports) assert.equal(await accepts(port), false, `port ${port} accepts`)
  })

  test('wrong usage exits 2 with one line naming the problem', async () => {
    const instances = start(['--app-instances', '0'])
    assert.equal(await instances.exited, 2)
    assert.match(instances.output(), /^start: --app-instances: expected a whole number from 1 to 64, got "0"$/m)
    const bad = start(['--real', 'tls,squid'])
    assert.equal(await bad.exited, 2)
    assert.match(bad.output(), /^start: --real: unknown layer "squid": use any of tls,router,static or all$/m)
    const ports = start(['--ports', '1,2'])
    assert.equal(await ports.exited, 2)
    assert.match(ports.output(), /^start: --ports: expected four ports TLS,ROUTER,STATIC,APP \(and the router's PROXY port\), got "1,2"$/m)
  })
})
