// `npm run test:docker`, second part: the compose file deployed as a stack on a real
// single-node swarm (`docker swarm init`, `docker stack deploy`), offline: the images are the
// ones `docker compose build` makes (with Debian's nginx and redis-server standing in for the
// official images, as in compose.test.ts). Three replicas of demo-app (one static layer: see
// docker-stack.yml); socket.io clients over wss stay connected; a rolling update of demo-app replaces
// every replica while each client is back within a reconnect. The swarm is left again (and
// dockerd stopped) only if this test made them.
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import net from 'node:net'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { io, type Socket } from 'socket.io-client'
import { composeCommand, ensureDockerEngine, run } from './engine.js'

const repo = fileURLToPath(new URL('../../../', import.meta.url))
const cache = `${repo}.artifacts/docker`
const stack = `edgestackswarm${process.pid}`
const MINUTE = 60_000
/** socket.io's reconnect delay (1 s, up to 5 s) plus a connection: "back within a reconnect". */
const RECONNECT_MS = 6_000
const FILES = ['docker-compose.yml', 'docker-compose.nginx.yml', 'docker/test/nginx-debian.yml', 'docker/test/redis-debian.yml', 'docker-stack.yml']

let stopEngine: () => Promise<void> = async () => {}
let leaveSwarm = false
let httpsPort = 0
let ca = ''
const started = Date.now()

async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

const docker = (args: string[], timeoutMs = MINUTE) => run('docker', args, { timeoutMs, cwd: repo })
const service = (name: string) => `${stack}_${name}`

/** The containers of a service's running tasks on this node. */
async function containers(name: string): Promise<string[]> {
  const out = await docker(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${service(name)}`])
  return out.split('\n').filter(Boolean)
}

/** "running/desired" for a service, as `docker service ls` shows it. */
async function replicas(name: string): Promise<string> {
  return (await docker(['service', 'ls', '--filter', `name=${service(name)}`, '--format', '{{.Replicas}}'])).trim()
}

async function until<T>(what: string, limitMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  for (const deadline = Date.now() + limitMs; Date.now() < deadline; await sleep(1_000)) {
    const v = await probe().catch(() => undefined)
    if (v !== undefined) return v
  }
  const ps = await docker(['stack', 'ps', '--no-trunc', stack]).catch((e: Error) => e.message)
  throw new Error(`${what}: not within ${limitMs / 1000} s; docker stack ps:\n${ps}`)
}

before(
  async () => {
    await mkdir(cache, { recursive: true })
    stopEngine = await ensureDockerEngine(`${cache}/dockerd.log`, (m) => process.stderr.write(`swarm test: ${m}\n`))
    const state = (await docker(['info', '--format', '{{.Swarm.LocalNodeState}}'])).trim()
    if (state !== 'active') {
      // Loopback: the swarm's control plane stays on this machine.
      await docker(['swarm', 'init', '--advertise-addr', '127.0.0.1'])
      leaveSwarm = true
    }
    const [cmd = 'docker-compose', ...pre] = await composeCommand()
    await run(`${repo}docker/stand-in/build-base.sh`, [], { timeoutMs: 15 * MINUTE, cwd: repo })
    // A stack deploy builds nothing: compose builds the images it names.
    await run(cmd, [...pre, '-p', stack, ...FILES.flatMap((f) => ['-f', f]), 'build'], { timeoutMs: 20 * MINUTE, cwd: repo })
    httpsPort = await freePort()
    const env = { ...process.env, EDGESTACK_HTTPS: String(httpsPort), EDGESTACK_HTTPS_DEV: String(await freePort()), EDGESTACK_HTTP: String(await freePort()) }
    // --resolve-image never: the images are local, there is no registry to ask.
    await run('docker', ['stack', 'deploy', '--resolve-image', 'never', ...FILES.flatMap((f) => ['-c', f]), stack], { timeoutMs: 5 * MINUTE, env, cwd: repo })
    await until('tls-terminator answers', 8 * MINUTE, async () => {
      const [id] = await containers('tls-terminator')
      if (!id) return undefined
      // Host mode binds one host port per container port: of EDGESTACK_HTTPS and
      // EDGESTACK_HTTPS_DEV (both to 443) one is bound; docker port says which.
      httpsPort = Number(/:(\d+)$/m.exec(await docker(['port', id, '443/tcp']))?.[1])
      ca = await docker(['exec', id, 'cat', '/certs/ca.crt'])
      const res = await fetchPage('/app.css')
      return res === 200 ? true : undefined
    })
  },
  { timeout: 45 * MINUTE },
)

after(
  async () => {
    try {
      await docker(['stack', 'rm', stack]).catch(() => '')
      // stack rm returns before the containers are gone; the network goes with the last one.
      await until('the stack is gone', 2 * MINUTE, async () => ((await docker(['ps', '-aq', '--filter', `label=com.docker.stack.namespace=${stack}`])).trim() ? undefined : true)).catch(() => undefined)
      await docker(['volume', 'rm', `${stack}_certs`]).catch(() => '')
      if (leaveSwarm) await docker(['swarm', 'leave', '--force'])
    } finally {
      await stopEngine()
      process.stderr.write(`swarm test: ${Math.round((Date.now() - started) / 1000)} s in all\n`)
    }
  },
  { timeout: 5 * MINUTE },
)

async function fetchPage(path: string): Promise<number> {
  const { request } = await import('node:https')
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: httpsPort, path, ca, servername: 'localhost', agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

interface Tracked {
  socket: Socket
  /** When it last lost its connection (undefined while connected). */
  downSince: number | undefined
  longestDownMs: number
  received: Set<string>
  lastError: string
  /** Its connects and disconnects with their reasons and times, for a failure's message. */
  history: string[]
}

function client(transport: 'polling' | 'websocket'): Tracked {
  const socket = io(`https://localhost:${httpsPort}`, { transports: [transport], ca, forceNew: true, timeout: 5_000 })
  const t: Tracked = { socket, downSince: Date.now(), longestDownMs: 0, received: new Set(), lastError: '', history: [] }
  const at = () => new Date().toISOString().slice(11, 23)
  socket.on('connect_error', (err: Error & { description?: unknown }) => {
    t.lastError = `${err.message} ${String((err.description as Error | undefined)?.message ?? err.description ?? '')}`
  })
  socket.on('connect', () => {
    if (t.downSince !== undefined) t.longestDownMs = Math.max(t.longestDownMs, Date.now() - t.downSince)
    t.downSince = undefined
    t.history.push(`${at()} connect ${socket.id}`)
  })
  socket.on('disconnect', (reason: string) => {
    t.downSince = Date.now()
    t.history.push(`${at()} disconnect (${reason})`)
  })
  socket.on('welcome', (w: { name: string; instance?: string }) => t.history.push(`${at()} welcome ${w.name}`))
  socket.on('message', (m: { text: string }) => t.received.add(m.text))
  return t
}

test('the stack runs three replicas of demo-app, one static-server and one Redis', async () => {
  assert.equal(await until('demo-app 3/3', 3 * MINUTE, async () => ((await replicas('demo-app')) === '3/3' ? '3/3' : undefined)), '3/3')
  assert.equal(await until('static-server 1/1', 3 * MINUTE, async () => ((await replicas('static-server')) === '1/1' ? '1/1' : undefined)), '1/1')
  assert.equal(await replicas('redis'), '1/1')
  // Each nginx resolved demo-app when it started, maybe before all three replicas ran: reload
  // them now that they do (docs/containers.md), so every static-server hashes over the same three.
  await reloadStatic()
  assert.equal(await fetchPage('/'), 200)
})

async function reloadStatic(): Promise<void> {
  for (const id of await containers('static-server')) await docker(['kill', '-s', 'HUP', id]).catch(() => '')
  // nginx reloads in the background; its new workers answer once the old ones hand over.
  await sleep(3_000)
}

test('a rolling update of demo-app: every replica replaced, every client back within a reconnect and hearing broadcasts', async (t) => {
  const clients = [...Array.from({ length: 4 }, () => client('polling')), ...Array.from({ length: 4 }, () => client('websocket'))]
  t.after(() => {
    for (const c of clients) c.socket.close()
  })
  await until('clients connected', MINUTE, async () => (clients.every((c) => c.socket.connected) ? true : undefined)).catch((err: Error) => {
    const down = clients.map((c, i) => `${i < 4 ? 'polling' : 'websocket'} ${i}: ${c.socket.connected ? 'up' : c.lastError}`)
    throw new Error(`${down.join('; ')}\n${err.message}`)
  })
  for (const c of clients) c.longestDownMs = 0
  const before = new Set(await containers('demo-app'))
  assert.equal(before.size, 3)

  await docker(['service', 'update', '--detach', '--force', service('demo-app')])
  // nginx 1.22 resolves demo-app's replicas when it reads its file: whenever the set of
  // replicas changes, reload it (SIGHUP, graceful: open websockets stay on the old workers),
  // as docs/containers.md tells an operator to.
  let seen = [...before].sort().join()
  const state = () => docker(['service', 'inspect', '--format', '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}', service('demo-app')]).then((s) => s.trim())
  await until('the rolling update completes', 6 * MINUTE, async () => {
    const now = (await containers('demo-app')).sort().join()
    if (now !== seen) {
      seen = now
      await reloadStatic()
    }
    return (await state()) === 'completed' ? true : undefined
  })
  await reloadStatic()
  const afterUpdate = new Set(await containers('demo-app'))
  assert.equal(afterUpdate.size, 3)
  for (const id of afterUpdate) assert.equal(before.has(id), false, 'a replica survived the update')

  await until('every client connected again', RECONNECT_MS, async () => (clients.every((c) => c.socket.connected) ? true : undefined))
  for (const [i, c] of clients.entries()) assert.ok(c.longestDownMs <= RECONNECT_MS, `client ${i} was away ${c.longestDownMs} ms`)
  // socket.io delivers at most once: a message a client sends while its transport is being
  // rerouted may be lost without an error on either side. The sender (a polling client, whose
  // every request is routed anew) says something every 2 s until each client has heard one
  // of them; which one each heard first is reported.
  const said: string[] = []
  const heard = (c: Tracked) => said.findIndex((text) => c.received.has(text))
  const sender = setInterval(() => {
    const text = `after the update ${process.pid} #${said.length}`
    said.push(text)
    clients[0]?.socket.emit('message', text)
  }, 2_000)
  t.after(() => clearInterval(sender))
  await until('a broadcast reaches everyone', 20_000, async () => (clients.every((c) => heard(c) >= 0) ? true : undefined))
    .catch(async (err: Error) => {
      const missed = clients.flatMap((c, i) => (heard(c) >= 0 ? [] : [`${i < 4 ? 'polling' : 'websocket'} ${i}: ${c.history.join(', ')}`]))
      const logs = await docker(['service', 'logs', '--timestamps', '--tail', '40', service('demo-app')]).catch((e: Error) => e.message)
      throw new Error(`${err.message}; ${said.length} sent by ${clients[0]?.history.at(-1)}; missed by ${missed.join('; ')}\ndemo-app's logs:\n${logs}`)
    })
    .finally(() => clearInterval(sender))
  t.diagnostic(`the first message each client heard (of ${said.length} sent 2 s apart): ${clients.map(heard).join(', ')}`)
})
