import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, type TestContext, test } from 'node:test'
import {
  type Answer,
  exitOf,
  get,
  getOverTls,
  heldBackend,
  idleKeepAlive,
  load,
  nextServing,
  quickBackend,
  servingPids,
} from './daemon-fixtures.js'
import { cliOf, type Daemon, REPO, runCli, startDaemon, waitForOutput } from './processes.js'

// The daemon layer (packages/common/src/daemon) on real processes: signals as nginx documents
// them, the manager that keeps the listening sockets while it restarts a dead child (varnishd's
// manager, nginx's master), reload by swap. Assertions poll what the processes say and do;
// none measures time.

const FIX = `${REPO}packages/tls-terminator/test/fixtures/`
const IN_FLIGHT = 8

async function tempDir(t: TestContext, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function started(t: TestContext, name: string, args: string[]): Promise<Daemon> {
  const d = await startDaemon(name, args)
  t.after(() => d.stop())
  return d
}

function staticConf(dir: string, opts: { workers: number; backend: number; listen?: string; extra?: string }): string {
  return `worker_processes ${opts.workers};
pid ${dir}/run.pid;
error_log stderr info;
events {}
http {
    log_format p '$request_uri $status';
    access_log ${dir}/access.log p;
    server {
        listen ${opts.listen ?? '127.0.0.1:0'};
        location / { proxy_pass http://127.0.0.1:${opts.backend}; }
    }
${opts.extra ?? ''}}
`
}

/** worker_processes 2: both workers said they serve. */
async function bothWorkers(d: Daemon): Promise<void> {
  for (let i = 0; i < 400 && servingPids(d).length < 2; i++) await new Promise((r) => setTimeout(r, 50))
  assert.equal(servingPids(d).length, 2, d.output())
}

async function gone(file: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (!(await stat(file).catch(() => undefined))) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return false
}

/**
 * SIGQUIT, nginx's graceful stop: with IN_FLIGHT requests held at the backend and one idle
 * keep-alive connection, the daemon stops accepting, closes the idle connection, answers every
 * request in flight, and exits 0. Before the daemon layer Node's default action for SIGQUIT
 * ended each daemon at once (exit 131) and every request here failed.
 */
async function gracefulStop(
  d: Daemon,
  backend: Awaited<ReturnType<typeof heldBackend>>,
  ask: (path: string) => Promise<Answer>,
  send: () => Promise<void> = async () => {
    d.child.kill('SIGQUIT')
  },
): Promise<Answer[]> {
  const idle = d.name === 'tls-terminator' ? undefined : await idleKeepAlive(d.port)
  const answers = Array.from({ length: IN_FLIGHT }, (_, i) => ask(`/quit/${i}`))
  await backend.holding(IN_FLIGHT)
  const exited = exitOf(d)
  await send()
  await waitForOutput(d, /graceful stop/)
  await idle?.closed
  backend.release()
  const got = await Promise.all(answers)
  const [code, signal] = await exited
  assert.equal(signal, null, `${d.name} died of ${signal}:\n${d.output()}`)
  assert.equal(code, 0, d.output())
  return got
}

describe('SIGQUIT: graceful stop, as nginx\'s', () => {
  test('caching-router: every request in flight answered, every varnishncsa line written, exit 0, pid file removed', async (t) => {
    const dir = await tempDir(t, 'quit-router-')
    const backend = await heldBackend(t)
    const pid = join(dir, 'varnishd.pid')
    const d = await started(t, 'caching-router', ['-a', '127.0.0.1:0', '-b', `127.0.0.1:${backend.port}`, '-P', pid])
    await nextServing(d, [])
    const got = await gracefulStop(d, backend, (p) => get(d.port, p))
    for (const [i, a] of got.entries()) assert.deepEqual(a, { status: 200, body: `held /quit/${i}\n` })
    for (let i = 0; i < IN_FLIGHT; i++) assert.match(d.output(), new RegExp(`"GET http://127\\.0\\.0\\.1:${d.port}/quit/${i} HTTP/1\\.1" 200 `))
    assert.ok(await gone(pid), 'the pid file is still there')
  })

  for (const workers of [1, 2]) {
    test(`static-server (worker_processes ${workers}${workers > 1 ? ', -s quit' : ''}): every request answered, every access_log line written, exit 0, pid file removed`, async (t) => {
      const dir = await tempDir(t, 'quit-static-')
      const backend = await heldBackend(t)
      await writeFile(join(dir, 'nginx.conf'), staticConf(dir, { workers, backend: backend.port }))
      const d = await started(t, 'static-server', ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf')])
      if (workers > 1) await bothWorkers(d)
      // With workers, through the pid file: `-s quit` is nginx's graceful stop (it was SIGTERM here).
      const quit = async () => {
        const r = await runCli('static-server', ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-s', 'quit'])
        assert.equal(r.code, 0, r.stderr)
      }
      const got = await gracefulStop(d, backend, (p) => get(d.port, p), workers > 1 ? quit : undefined)
      for (const [i, a] of got.entries()) assert.deepEqual(a, { status: 200, body: `held /quit/${i}\n` })
      const lines = (await readFile(join(dir, 'access.log'), 'utf8')).split('\n').filter((l) => l.startsWith('/quit/'))
      assert.deepEqual(lines.sort(), Array.from({ length: IN_FLIGHT }, (_, i) => `/quit/${i} 200`).sort())
      assert.ok(await gone(join(dir, 'run.pid')), 'the pid file is still there')
    })
  }

  test('tls-terminator: every connection in flight carried to its end, exit 0', async (t) => {
    const backend = await heldBackend(t)
    const d = await started(t, 'tls-terminator', [
      '--accept',
      '127.0.0.1:0',
      '--connect',
      String(backend.port),
      '--cert',
      `${FIX}localhost.crt`,
      '--key',
      `${FIX}localhost.key`,
    ])
    const got = await gracefulStop(d, backend, (p) => getOverTls(d.port, p))
    for (const [i, a] of got.entries()) assert.deepEqual(a, { status: 200, body: `held /quit/${i}\n` })
  })
})

/**
 * kill -9 of the serving process under a bounded load: the manager keeps the listening socket,
 * so the kernel queues the connections that arrive meanwhile; none is refused. Connections the
 * killed process had accepted die with it (reset), as with varnishd's and nginx's.
 */
async function killUnderLoad(t: TestContext, d: Daemon, noun: string): Promise<void> {
  // The manager keeps a spare loaded; the kill is measured once it waits.
  await waitForOutput(d, new RegExp(`spare ${noun} \\d+ waiting`), 400)
  const before = servingPids(d)
  const victim = before[0] as number
  let killedAt = 0
  const results = await load(d.port, 300, 4, (done) => {
    if (done === 60 && !killedAt) {
      killedAt = Date.now()
      process.kill(victim, 'SIGKILL')
    }
  })
  const fresh = await nextServing(d, before)
  // What the manager's own log says (reported, not asserted): its death seen -> the new one serving.
  const stamp = (re: RegExp) => Date.parse(re.exec(d.output())?.[1] ?? '')
  const died = stamp(new RegExp(`^(\\S+) error \\S+ ${noun} ${victim} killed`, 'm'))
  const serving = stamp(new RegExp(`^(\\S+) info \\S+ ${noun} ${fresh} serving`, 'm'))
  t.diagnostic(`${noun} ${victim} killed; ${noun} ${fresh} serving ${serving - died} ms after the manager saw the death`)
  assert.ok(killedAt > 0)
  assert.match(d.output(), new RegExp(`${noun} ${victim} killed by SIGKILL; spare ${fresh} takes its place`))
  const refused = results.filter((r) => r === 'ECONNREFUSED')
  assert.deepEqual(refused, [], `refused connections: ${refused.length}`)
  const other = results.filter((r) => r !== 200 && r !== 'ECONNRESET' && r !== 'socket hang up')
  assert.deepEqual(other, [])
  // Service is back: the last requests of the load and one more got their answer.
  assert.equal(results.at(-1), 200)
  assert.equal((await get(d.port, '/after')).status, 200)
  assert.ok(d.alive())
}

test('a stop signal that reaches the manager while its first child starts is obeyed once the child serves', async (t) => {
  const port = await quickBackend(t)
  // The child says "listening on" before its manager hears it is ready: the signal is sent in
  // that moment, from the output handler itself. The manager used to take over its signals only
  // after the first child served, so Node's default for SIGQUIT ended it at once (signal, no log).
  const child = spawn(process.execPath, [cliOf('caching-router'), '-a', '127.0.0.1:0', '-b', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let out = ''
  const onChunk = (c: Buffer) => {
    const first = !out.includes('listening on')
    out += c.toString()
    if (first && out.includes('listening on')) child.kill('SIGQUIT')
  }
  child.stdout.on('data', onChunk)
  child.stderr.on('data', onChunk)
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null]
  assert.equal(signal, null, `died of ${signal}:\n${out}`)
  assert.equal(code, 0, out)
  assert.match(out, /SIGQUIT: graceful stop/)
  assert.match(out, /stopped/)
})

describe('a manager keeps the sockets while it restarts a killed child', () => {
  test('caching-router: kill -9 of the child refuses no connection; a new child serves; -T keeps answering', async (t) => {
    const dir = await tempDir(t, 'kill-router-')
    const secret = join(dir, 'secret')
    await writeFile(secret, 'kill secret\n')
    const backend = await quickBackend(t)
    const d = await started(t, 'caching-router', ['-a', '127.0.0.1:0', '-b', `127.0.0.1:${backend}`, '-T', '127.0.0.1:0', '-S', secret])
    await nextServing(d, [])
    await killUnderLoad(t, d, 'child')
    const admin = /admin CLI on (127\.0\.0\.1:\d+)/.exec(d.output())?.[1] as string
    const r = await runCli('caching-router', ['stat', '-T', admin, '-S', secret])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^MAIN\.uptime\s+\d+/m)
  })

  test('static-server worker_processes 2: kill -9 of a worker refuses no connection; the master starts another', async (t) => {
    const dir = await tempDir(t, 'kill-static-')
    const backend = await quickBackend(t)
    await writeFile(join(dir, 'nginx.conf'), staticConf(dir, { workers: 2, backend }))
    const d = await started(t, 'static-server', ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf')])
    await bothWorkers(d)
    await killUnderLoad(t, d, 'worker process')
  })

  test('tls-terminator --workers 2: a worker killed with -9 is replaced; the primary stays up', async (t) => {
    const backend = await quickBackend(t)
    const d = await started(t, 'tls-terminator', [
      '--workers',
      '2',
      '--accept',
      '127.0.0.1:0',
      '--connect',
      String(backend),
      '--cert',
      `${FIX}localhost.crt`,
      '--key',
      `${FIX}localhost.key`,
    ])
    await bothWorkers(d)
    const before = servingPids(d)
    process.kill(before[0] as number, 'SIGKILL')
    await nextServing(d, before)
    assert.match(d.output(), new RegExp(`worker ${before[0]} killed by SIGKILL; starting another`))
    for (let i = 0; i < 4; i++) assert.equal((await getOverTls(d.port, `/w/${i}`)).status, 200)
    assert.ok(d.alive())
  })

  test('a child that keeps dying is started again after growing waits; the manager stays up', async (t) => {
    const backend = await quickBackend(t)
    const d = await started(t, 'caching-router', ['-a', '127.0.0.1:0', '-b', `127.0.0.1:${backend}`])
    const seen: number[] = []
    for (let i = 0; i < 4; i++) {
      const pid = await nextServing(d, seen)
      seen.push(pid)
      process.kill(pid, 'SIGKILL')
      await waitForOutput(d, new RegExp(`child ${pid} killed by SIGKILL; `), 400)
    }
    // The first death after a healthy start restarts at once (the spare, if it is ready); each
    // quick death after it doubles the wait, and no spare is spent on a child dying in a loop.
    assert.match(d.output(), /killed by SIGKILL; (starting another\n|spare \d+ takes its place)/)
    assert.match(d.output(), /starting another in 250 ms \(2 deaths in a row\)/)
    assert.match(d.output(), /starting another in 500 ms \(3 deaths in a row\)/)
    assert.match(d.output(), /starting another in 1000 ms \(4 deaths in a row\)/)
    await nextServing(d, seen)
    assert.equal((await get(d.port, '/back')).status, 200)
    assert.ok(d.alive())
  })
})

describe('reload by swap: the new configuration is bound before anything changes', () => {
  for (const workers of [1, 2]) {
    test(`static-server (worker_processes ${workers}): a reload whose new listen cannot bind keeps the old configuration answering; -s reload exits 0 as nginx's`, async (t) => {
      const dir = await tempDir(t, 'reload-bind-')
      const blocker = net.createServer()
      blocker.listen(0, '127.0.0.1')
      await new Promise((r) => blocker.once('listening', r))
      t.after(() => blocker.close())
      const taken = (blocker.address() as net.AddressInfo).port
      const conf = join(dir, 'nginx.conf')
      const page = (text: string, extra = '') =>
        `worker_processes ${workers};\npid ${dir}/run.pid;\nerror_log stderr info;\nevents {}\nhttp {\n    access_log off;\n    server { listen 127.0.0.1:0; location / { return 200 "${text}\\n"; } }\n${extra}}\n`
      await writeFile(conf, page('one'))
      const d = await started(t, 'static-server', ['-p', `${dir}/`, '-c', conf])
      if (workers > 1) await bothWorkers(d)
      assert.equal((await get(d.port, '/')).body, 'one\n')

      // The same address again keeps its socket (port 0 included): the port does not change.
      await writeFile(conf, page('two'))
      const ok = await runCli('static-server', ['-p', `${dir}/`, '-c', conf, '-s', 'reload'])
      assert.equal(ok.code, 0, ok.stderr)
      await waitForOutput(d, /reloaded/, 400)
      assert.equal((await get(d.port, '/')).body, 'two\n')

      // A new server on a port another process holds: nginx's master logs the bind error and
      // keeps its configuration; the signaller has already exited 0.
      await writeFile(conf, page('three', `    server { listen 127.0.0.1:${taken}; location / { return 200 "x\\n"; } }\n`))
      const bad = await runCli('static-server', ['-p', `${dir}/`, '-c', conf, '-s', 'reload'])
      assert.equal(bad.code, 0, bad.stderr)
      await waitForOutput(d, new RegExp(`reload failed, keeping the running configuration: cannot listen on 127\\.0\\.0\\.1:${taken}: .*EADDRINUSE`), 400)
      for (let i = 0; i < 5; i++) assert.equal((await get(d.port, '/')).body, 'two\n')
      assert.ok(d.alive())
    })
  }
})
