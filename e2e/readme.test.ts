// The README's "Run each service on its own" section, run as a new user would run it, on a copy
// of the working tree: `npm install`, every bin before the build (one line, exit 1, never the
// registry), the build, each command of the section started, answered and stopped, and
// `npm start` with Ctrl-C. The commands are read from README.md itself, so the README cannot
// drift from what works. The dev ports are moved to free ones in the copy (config files and
// commands alike), so the test never collides with a stack a developer has running.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { fetchRaw } from './client.js'
import { accepts, freePort } from './ports.js'
import { type Daemon, REPO, startProcess } from './processes.js'

const run = promisify(execFile)
const README = await readFile(join(REPO, 'README.md'), 'utf8')

/** The text of `## title` up to the next second-level heading. */
function section(title: string): string {
  const start = README.indexOf(`\n## ${title}\n`)
  assert.notEqual(start, -1, `README.md has no "## ${title}" section`)
  const end = README.indexOf('\n## ', start + 1)
  return README.slice(start, end === -1 ? undefined : end)
}

/** Lines of the ```sh blocks, without their trailing comments. */
function shellLines(text: string): string[] {
  const lines: string[] = []
  for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of (block[1] as string).split('\n')) {
      const command = line.replace(/\s+#\s.*$/, '').trim()
      if (command !== '') lines.push(command)
    }
  }
  return lines
}

const own = section('Run each service on its own')
/** The table's "ours" column, in its order: app, static, router, TLS. */
const daemons = [...own.matchAll(/^\| (\w+) \| `(npx [^`]+)` \|/gm)].map((m) => ({ layer: m[1] as string, line: m[2] as string }))
const [setup, checks, flags] = [...own.matchAll(/```sh\n[\s\S]*?```/g)].map((m) => shellLines(m[0]))

const DEV = { tls: 8443, router: 8080, static: 8081, app: 3000 }
type Ports = typeof DEV

function movePorts(text: string, ports: Ports): string {
  return text.replace(/\b(8443|8080|8081|3000)\b/g, (p) => {
    const layer = (Object.keys(DEV) as (keyof Ports)[]).find((k) => String(DEV[k]) === p) as keyof Ports
    return String(ports[layer])
  })
}

const CONFIGS = ['config/nginx.conf', 'config/default.vcl', 'config/stunnel.conf']

/** The daemons' lines read config/ as it is: there the copy's ports replace the dev ones. */
async function movePortsInConfig(dir: string, to: Ports): Promise<void> {
  for (const file of CONFIGS) await writeFile(join(dir, file), movePorts(await readFile(join(REPO, file), 'utf8'), to))
}

let clone: string
let ports: Ports
// Quiet npm, and from its cache where it can: the lines are the README's, the registry the same.
const env = {
  ...process.env,
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
  npm_config_prefer_offline: 'true',
}

/** Runs one README line in the copy with bash, to completion. */
async function sh(line: string, timeoutMs = 120_000): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('bash', ['-c', line], { cwd: clone, env, timeout: timeoutMs, maxBuffer: 16 << 20 })
    return { code: 0, out: stdout + stderr }
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }
  }
}

/** Starts one README line in the copy, ready once its port accepts connections. */
function serve(layer: keyof Ports, line: string): Promise<Daemon> {
  // A terminal, not a socket pair, is what nginx.conf's `access_log /dev/stdout` expects.
  return startProcess(layer, 'bash', ['-c', movePorts(line, ports)], { port: ports[layer] }, { cwd: clone, pipe: true, timeoutMs: 30_000 })
}

async function stopped(d: Daemon, port: number): Promise<void> {
  await d.stop()
  assert.equal(await accepts(port), false, `${d.name}: port ${port} still accepts after the stop`)
}

describe('README: run each service on its own, on a fresh copy', { timeout: 600_000 }, () => {
  before(async () => {
    assert.deepEqual(
      daemons.map((d) => d.layer),
      ['app', 'static', 'router', 'TLS'],
    )
    assert.ok(setup && checks && flags, 'the section lost one of its three command blocks')
    ports = { tls: await freePort(), router: await freePort(), static: await freePort(), app: await freePort() }
    clone = await mkdtemp(join(tmpdir(), 'edgestack-readme-'))
    // The working tree as git sees it (tracked and untracked-but-not-ignored files): what a
    // clone of a commit of it would hold, without node_modules, dist or .certs.
    const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO, maxBuffer: 16 << 20 })
    for (const file of stdout.split('\0').filter(Boolean)) {
      const from = join(REPO, file)
      if (!(await stat(from).catch(() => undefined))?.isFile()) continue
      await mkdir(dirname(join(clone, file)), { recursive: true })
      await cp(from, join(clone, file))
    }
    await movePortsInConfig(clone, ports)
  })
  after(async () => {
    if (clone) await rm(clone, { recursive: true, force: true })
  })

  test('npm install, then every bin says in one line to build first (exit 1)', async () => {
    const install = await sh('npm install')
    assert.equal(install.code, 0, install.out)
    for (const bin of ['demo-app', 'static-server', 'caching-router', 'tls-terminator']) {
      const r = await sh(`npx ${bin} --help`, 30_000)
      assert.equal(r.code, 1, r.out)
      assert.equal(r.out, `${bin}: not built yet: run \`npm run build\` in the repository first\n`)
    }
  })

  test('the set-up block, then the four daemons from config/ serve the page through TLS', async (t) => {
    for (const line of setup as string[]) {
      const r = await sh(line)
      assert.equal(r.code, 0, `${line}\n${r.out}`)
    }

    const started: Daemon[] = []
    t.after(async () => {
      for (const d of started.reverse()) await d.stop()
    })
    const layerOf = { app: 'app', static: 'static', router: 'router', TLS: 'tls' } as const
    for (const { layer, line } of daemons) started.push(await serve(layerOf[layer as keyof typeof layerOf], line))
    const ca = await readFile(join(clone, '.certs/ca.crt'), 'utf8')
    const page = await fetchRaw(`https://localhost:${ports.tls}/`, { ca })
    assert.equal(page.status, 200)
    assert.match(page.body.toString(), /socket\.io/)
    assert.equal((await fetchRaw(`https://localhost:${ports.tls}/app.css`, { ca })).status, 200)

    // The checks block: nginx -t, -s reload against the running one, varnishd -C, and last
    // -s quit, which must stop the running static-server.
    const [app, staticServer, router, tls] = started as [Daemon, Daemon, Daemon, Daemon]
    for (const line of checks as string[]) {
      const r = await sh(movePorts(line, ports), 30_000)
      assert.equal(r.code, 0, `${line}\n${r.out}`)
      if (/ -s reload /.test(line)) assert.equal((await fetchRaw(`http://127.0.0.1:${ports.static}/app.css`)).status, 200)
    }
    assert.ok((checks as string[]).some((l) => / -s quit /.test(l)))
    if (staticServer.child.exitCode === null && staticServer.child.signalCode === null) await once(staticServer.child, 'exit')
    assert.equal(await accepts(ports.static), false, 'static-server -s quit left the port open')
    started.splice(started.indexOf(staticServer), 1)

    for (const [d, port] of [
      [tls, ports.tls],
      [router, ports.router],
      [app, ports.app],
    ] as const) {
      await stopped(d, port)
      started.splice(started.indexOf(d), 1)
    }
  })

  test('the flag examples start, answer, and stop', async (t) => {
    const lines = flags as string[]
    const find = (re: RegExp) => {
      const line = lines.find((l) => re.test(l))
      assert.ok(line, `no README line matches ${re}`)
      return line as string
    }
    const started: Daemon[] = []
    t.after(async () => {
      for (const d of started.reverse()) await d.stop()
    })
    started.push(await serve('app', (daemons[0] as { line: string }).line))
    started.push(await serve('static', find(/^npx static-server --listen/)))
    started.push(await serve('router', find(/^npx caching-router .*--static-backend/)))
    started.push(await serve('tls', find(/^npx tls-terminator --accept/)))
    const ca = await readFile(join(clone, '.certs/ca.crt'), 'utf8')
    assert.equal((await fetchRaw(`https://localhost:${ports.tls}/`, { ca })).status, 200)
    assert.equal((await fetchRaw(`https://localhost:${ports.tls}/app.css`, { ca })).status, 200)

    const router = started[2] as Daemon
    await stopped(router, ports.router)
    started.splice(2, 1)
    const single = await serve('router', find(/^npx caching-router .* -b /))
    started.push(single)
    // -b names the static server: its files come through; the page, which only the app has, is
    // nginx's fallback to the app.
    assert.equal((await fetchRaw(`http://127.0.0.1:${ports.router}/app.css`)).status, 200)

    const out = await mkdtemp(join(tmpdir(), 'edgestack-readme-cert-'))
    t.after(() => rm(out, { recursive: true, force: true }))
    const cert = await sh(find(/^npx tls-terminator cert --out DIR$/).replace('DIR', out))
    assert.equal(cert.code, 0, cert.out)
    for (const f of ['ca.crt', 'server.crt', 'server.key']) assert.ok((await stat(join(out, f))).size > 0, f)
  })

  test('npm start serves the page and Ctrl-C stops everything', async () => {
    const line = 'npm start'
    assert.match(README, /npm install && npm start/)
    // npm start fills in the ports of config/ itself: it gets the files as they are in the tree.
    for (const file of CONFIGS) await cp(join(REPO, file), join(clone, file))
    const d = await startProcess('npm start', 'bash', ['-c', `${line} -- --ports ${ports.tls},${ports.router},${ports.static},${ports.app}`], { port: ports.tls }, { cwd: clone, timeoutMs: 120_000 })
    try {
      const ca = await readFile(join(clone, '.certs/ca.crt'), 'utf8')
      // The TLS port opens before the whole chain is up; "edgestack is up" ends the start.
      for (let i = 0; i < 600 && !/edgestack is up/.test(d.output()); i++) await new Promise((r) => setTimeout(r, 50))
      assert.match(d.output(), /edgestack is up/)
      assert.equal((await fetchRaw(`https://localhost:${ports.tls}/`, { ca })).status, 200)
      // Ctrl-C in a terminal signals the foreground process group.
      const exited = once(d.child, 'exit')
      process.kill(-(d.child.pid as number), 'SIGINT')
      const [code, signal] = await exited
      // npm itself dies of the SIGINT it was sent (as in a terminal); what it ran stops cleanly.
      assert.ok(code === 0 || signal === 'SIGINT', `npm start ended with ${code ?? signal}\n${d.output()}`)
      assert.match(d.output(), /info start: stopped/)
      for (const port of Object.values(ports)) assert.equal(await accepts(port), false, `port ${port} still accepts after Ctrl-C`)
    } finally {
      await d.stop()
    }
  })
})
