// `npm run test:docker`: the stack as `docker compose up` runs it, checked from the outside.
// Builds the base image offline (docker/stand-in/build-base.sh), builds the stack's image,
// brings the compose project up with every published port on 127.0.0.1 (ports docker picks),
// then talks to it through the published TLS port like a user would: a static file, the app
// page and a socket.io client over wss; checks logs on stdout and a clean stop on SIGTERM; then
// runs the swap files (the real stunnel, varnishd and nginx) and checks the chain again. It
// ends with `down -v`, leaving no container, network or volume behind, and stops dockerd if it
// started it.
import assert from 'node:assert/strict'
import { mkdir, readFile } from 'node:fs/promises'
import https from 'node:https'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { io, type Socket } from 'socket.io-client'
import { composeCommand, ensureDockerEngine, run } from './engine.js'

const repo = fileURLToPath(new URL('../../../', import.meta.url))
const cache = `${repo}.artifacts/docker`
const project = `edgestacktest${process.pid}`
const MINUTE = 60_000

let compose: string[] = []
let stopEngine: () => Promise<void> = async () => {}
let ca = ''
let httpsPort = 0
let httpsDevPort = 0
let httpPort = 0
const started = Date.now()

const env = {
  ...process.env,
  // Published on loopback only, on ports docker chooses: nothing is reachable from outside and
  // nothing clashes with a stack already running here. Two spellings of "any port", because
  // compose refuses two identical entries in one service's list.
  EDGESTACK_HTTPS: '127.0.0.1:0',
  EDGESTACK_HTTPS_DEV: '127.0.0.1:',
  EDGESTACK_HTTP: '127.0.0.1:0',
}

/** Runs compose on the project; `overrides` are extra compose files (the layer swaps). */
function composeRun(args: string[], timeoutMs: number, overrides: string[] = []): Promise<string> {
  const [cmd = 'docker-compose', ...pre] = compose
  // The redis service from Debian's package: the official image cannot be pulled here.
  const files = ['docker-compose.yml', 'docker/test/redis-debian.yml', ...overrides].flatMap((f) => ['-f', f])
  return run(cmd, [...pre, '-p', project, ...files, ...args], { timeoutMs, env, cwd: repo })
}

async function containerOf(service: string): Promise<string> {
  const id = (await composeRun(['ps', '-q', service], MINUTE)).trim()
  assert.ok(id, `no container for ${service}`)
  return id
}

async function inspect(id: string, format: string): Promise<string> {
  return (await run('docker', ['inspect', '-f', format, id], { timeoutMs: MINUTE })).trim()
}

/** The host port a service's container port is published on (`127.0.0.1:PORT`). */
async function publishedPorts(service: string, containerPort: number): Promise<number[]> {
  const out = await run('docker', ['port', await containerOf(service), `${containerPort}/tcp`], { timeoutMs: MINUTE })
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const m = /^(?:[\d.]+|\[::\]|::):(\d+)$/.exec((line.split(' -> ')[1] ?? line).trim())
      assert.ok(m?.[1], `unexpected docker port output: ${line}`)
      assert.ok(line.includes('127.0.0.1:'), `${service} published beyond loopback: ${line}`)
      return Number(m[1])
    })
}

const composeLogs = () => composeRun(['logs', '--no-color', '--tail', '40'], MINUTE).catch((e: Error) => e.message)

async function waitHealthy(service: string, limitMs: number): Promise<void> {
  const id = await containerOf(service)
  let status = ''
  for (const deadline = Date.now() + limitMs; Date.now() < deadline; await sleep(1_000)) {
    status = await inspect(id, '{{.State.Health.Status}}')
    if (status === 'healthy') return
    if (status === 'unhealthy' || (await inspect(id, '{{.State.Running}}')) !== 'true') break
  }
  throw new Error(`${service} is ${status || 'not running'}; logs:\n${await composeLogs()}`)
}

function get(port: number, path: string): Promise<{ status: number; type: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    // servername localhost: the certificate names localhost, 127.0.0.1 and the service names.
    const req = https.get({ host: '127.0.0.1', port, path, ca, servername: 'localhost', agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks) }),
      )
      res.on('error', reject)
    })
    req.setTimeout(15_000, () => req.destroy(new Error(`no answer for ${path} in 15 s`)))
    req.on('error', reject)
  })
}

before(
  async () => {
    await mkdir(cache, { recursive: true })
    stopEngine = await ensureDockerEngine(`${cache}/dockerd.log`, (m) => process.stderr.write(`docker test: ${m}\n`))
    compose = await composeCommand()
    await run(`${repo}docker/stand-in/build-base.sh`, [], { timeoutMs: 15 * MINUTE, cwd: repo })
    await composeRun(['build', '--force-rm'], 15 * MINUTE)
    await composeRun(['up', '-d'], 5 * MINUTE).catch(async (err: Error) => {
      throw new Error(`${err.message}\nlogs:\n${await composeLogs()}`)
    })
    await waitHealthy('tls-terminator', 2 * MINUTE)
    ca = await run('docker', ['exec', await containerOf('tls-terminator'), 'cat', '/certs/ca.crt'], { timeoutMs: MINUTE })
    ;[httpsPort = 0, httpsDevPort = 0] = await publishedPorts('tls-terminator', 443)
    ;[httpPort = 0] = await publishedPorts('caching-router', 80)
  },
  { timeout: 40 * MINUTE },
)

after(
  async () => {
    try {
      if (compose.length > 0) await composeRun(['down', '-v', '--remove-orphans', '-t', '20'], 3 * MINUTE)
    } finally {
      await stopEngine()
      process.stderr.write(`docker test: ${Math.round((Date.now() - started) / 1000)} s in all\n`)
    }
  },
  { timeout: 5 * MINUTE },
)

test('every service is up and healthy, as the unprivileged node user on a read-only file system', async () => {
  for (const service of ['demo-app', 'static-server', 'caching-router', 'tls-terminator']) {
    const id = await containerOf(service)
    assert.equal(await inspect(id, '{{.State.Health.Status}}'), 'healthy', service)
    assert.equal(await inspect(id, '{{.Config.User}}'), 'node', service)
    assert.equal(await inspect(id, '{{.HostConfig.ReadonlyRootfs}}'), 'true', service)
  }
  const certs = await containerOf('certs')
  assert.equal(await inspect(certs, '{{.State.ExitCode}}'), '0', 'the certs one-shot succeeded')
})

test('a static file comes through the published TLS port, byte for byte', async () => {
  assert.ok(httpsPort > 0 && httpsDevPort > 0 && httpsPort !== httpsDevPort, 'both TLS ports published')
  const expected = await readFile(`${repo}packages/demo-app/public/app.css`)
  for (const port of [httpsPort, httpsDevPort]) {
    const res = await get(port, '/app.css')
    assert.equal(res.status, 200)
    assert.match(res.type, /^text\/css/)
    assert.deepEqual(res.body, expected)
  }
})

test('the app page comes through the chain from demo-app', async () => {
  const res = await get(httpsPort, '/')
  assert.equal(res.status, 200)
  assert.match(res.type, /^text\/html/)
  assert.deepEqual(res.body, await readFile(`${repo}packages/demo-app/views/index.html`))
})

test('the plain HTTP port serves the static files too', async () => {
  const res = await fetch(`http://127.0.0.1:${httpPort}/app.js`, { signal: AbortSignal.timeout(15_000) })
  assert.equal(res.status, 200)
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), await readFile(`${repo}packages/demo-app/public/app.js`))
})

/** A socket.io client over wss (websocket transport only): connects, and its message comes back. */
async function socketRoundTrip(port: number, transport: 'websocket' | 'polling' = 'websocket'): Promise<void> {
  const socket: Socket = io(`https://localhost:${port}`, {
    transports: [transport],
    ca,
    reconnection: false,
    timeout: 15_000,
    forceNew: true,
  })
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('connect_error', reject)
    })
    assert.equal(socket.io.engine.transport.name, transport)
    const text = `hello from the docker test ${process.pid}`
    const echoed = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message back in 15 s')), 15_000)
      socket.on('message', (m: { text: string }) => {
        if (m.text !== text) return
        clearTimeout(timer)
        resolve(m.text)
      })
    })
    socket.emit('message', text)
    assert.equal(await echoed, text)
  } finally {
    socket.close()
  }
}

test('a socket.io client connects over wss and its message comes back', async () => {
  await socketRoundTrip(httpsPort)
})

test('every daemon logs to stdout, where the request just made through the chain shows', async () => {
  const tag = `docker-test-${process.pid}`
  assert.equal((await get(httpsPort, `/?${tag}`)).status, 200)
  for (const service of ['tls-terminator', 'caching-router', 'static-server', 'demo-app']) {
    // run() resolves with stdout only: docker logs replays the container's stderr separately.
    const stdout = await run('docker', ['logs', await containerOf(service)], { timeoutMs: MINUTE })
    assert.notEqual(stdout.trim(), '', `${service} wrote nothing to stdout`)
    if (service === 'caching-router' || service === 'demo-app') assert.ok(stdout.includes(tag), `${service} log`)
  }
})

test('SIGTERM stops every daemon cleanly (exit 0) within the stop timeout', async () => {
  await composeRun(['stop', '-t', '20'], 2 * MINUTE)
  for (const service of ['tls-terminator', 'caching-router', 'static-server', 'demo-app']) {
    const id = await containerOf(service)
    // 137 would mean docker had to SIGKILL it after the timeout.
    assert.equal(await inspect(id, '{{.State.ExitCode}}'), '0', `${service} exit code`)
  }
})

test('the real stunnel swapped in for tls-terminator (docker-compose.stunnel.yml) serves the same chain', async () => {
  // Recreates tls-terminator from Debian's stunnel4 reading docker/config/stunnel.conf; compose
  // starts the rest of the (stopped) stack again, unchanged. (The varnish and nginx swaps need
  // images from Docker Hub and cannot run here.)
  await composeRun(['up', '-d', '--build', 'tls-terminator'], 10 * MINUTE, ['docker-compose.stunnel.yml'])
  await waitHealthy('tls-terminator', 2 * MINUTE)
  const image = await inspect(await containerOf('tls-terminator'), '{{.Config.Image}}')
  assert.equal(image, 'edgestack-stunnel:local')
  const [port = 0] = await publishedPorts('tls-terminator', 443)
  const res = await get(port, '/app.css')
  assert.equal(res.status, 200)
  assert.deepEqual(res.body, await readFile(`${repo}packages/demo-app/public/app.css`))
  await socketRoundTrip(port)
})

test("the article's stack: real stunnel, varnishd and nginx swapped in together serve the same chain", async () => {
  // docker-compose.varnish.yml and docker-compose.nginx.yml as a user runs them, with Debian's
  // packages standing in for the official images (docker/test/debian-packages.yml).
  const swaps = [
    'docker-compose.stunnel.yml',
    'docker-compose.varnish.yml',
    'docker-compose.nginx.yml',
    'docker/test/debian-packages.yml',
  ]
  // Three app instances (compose's --scale): nginx's upstream resolves demo-app to all three
  // and keeps each client on one (docker/config/nginx.conf), the instances share Redis.
  await composeRun(['up', '-d', '--build', '--scale', 'demo-app=3'], 10 * MINUTE, swaps)
  await waitHealthy('tls-terminator', 2 * MINUTE)
  const apps = (await composeRun(['ps', '-q', 'demo-app'], MINUTE)).trim().split('\n')
  assert.equal(apps.length, 3, 'three demo-app containers')
  const images = await Promise.all(
    ['caching-router', 'static-server'].map(async (s) => inspect(await containerOf(s), '{{.Config.Image}}')),
  )
  assert.deepEqual(images, ['edgestack-varnish-debian:local', 'edgestack-nginx-debian:local'])
  const [port = 0] = await publishedPorts('tls-terminator', 443)
  const css = await get(port, '/app.css')
  assert.equal(css.status, 200)
  assert.deepEqual(css.body, await readFile(`${repo}packages/demo-app/public/app.css`))
  const page = await get(port, '/')
  assert.equal(page.status, 200)
  assert.deepEqual(page.body, await readFile(`${repo}packages/demo-app/views/index.html`))
  await socketRoundTrip(port)
  await socketRoundTrip(port, 'polling')
})

test('down -v leaves no container, network or volume of the project', async () => {
  await composeRun(['down', '-v', '--remove-orphans', '-t', '20'], 3 * MINUTE)
  const label = `label=com.docker.compose.project=${project}`
  for (const kind of [['ps', '-a'], ['network', 'ls'], ['volume', 'ls']]) {
    const left = await run('docker', [...kind, '-q', '--filter', label], { timeoutMs: MINUTE })
    assert.equal(left.trim(), '', `${kind.join(' ')} after down`)
  }
})
