import { access } from 'node:fs/promises'
import type * as StackModule from '../e2e/stack.js'
import { startCachingRouter, startVarnishd } from './layers/router.js'
import {
  type BenchContext,
  findProgram,
  ourCli,
  PROGRAMS,
  type Program,
  type Server,
  startNodePeer,
} from './layers/server.js'
import { startNginx, startNginxCeiling, startStaticServer } from './layers/static.js'
import { startHitch, startStunnel, startTlsTerminator, startTlsTerminatorHitch } from './layers/tls.js'

/** A contender that could not start, and why: its rows say so instead of measuring. */
export interface Missing {
  missing: string
  /** Who is missing, for the table. */
  name: string
  /** Not installed or left out (a skip), rather than failed (a problem worth the logs). */
  absent: boolean
}

export type Slot = Server | Missing

export function isMissing(s: Slot | undefined): s is Missing | undefined {
  return s === undefined || 'missing' in s
}

/** The servers one group of scenarios measures, started once and shared by its scenarios. */
export interface Started {
  slots: Record<string, Slot>
  /** The fast origin's port, to count the requests that reached it. */
  originPort?: number
  stop(): Promise<void>
}

/** The real programs found, and why each absent one is. */
export interface Programs {
  path: Partial<Record<Program, string>>
  why(p: Program): string
}

export async function findPrograms(without: readonly string[] = []): Promise<Programs> {
  const path: Programs['path'] = {}
  for (const name of Object.keys(PROGRAMS) as Program[]) {
    const found = without.includes(name) ? undefined : await findProgram([...PROGRAMS[name].paths])
    if (found) path[name] = found
  }
  return {
    path,
    why: (p) => (without.includes(p) ? `${p} left out (--without)` : `${p} is not installed: ${PROGRAMS[p].install}`),
  }
}

/** Starts servers one after another, turning each failure into a Missing with its reason. */
class Starter {
  readonly slots: Record<string, Slot> = {}
  readonly #servers: Server[] = []

  async add(key: string, name: string, start: () => Promise<Server>): Promise<Server | undefined> {
    try {
      const s = await start()
      this.#servers.push(s)
      this.slots[key] = s
      return s
    } catch (err) {
      this.slots[key] = { missing: `did not start: ${firstLines((err as Error).message)}`, name, absent: false }
      return undefined
    }
  }

  miss(key: string, name: string, why: string, absent: boolean): void {
    this.slots[key] = { missing: why, name, absent }
  }

  stop = async () => {
    await Promise.all(this.#servers.reverse().map((s) => s.stop()))
  }
}

function firstLines(text: string, n = 6): string {
  return text.split('\n').slice(0, n).join(' | ')
}

async function ourLayerExists(pkg: string): Promise<string | undefined> {
  return access(ourCli(pkg)).then(
    () => undefined,
    () => `${pkg} is not built (${ourCli(pkg)} is missing: run npx tsc -b)`,
  )
}

/** Starts ours (when built) or records why not. */
async function addOurs(st: Starter, key: string, pkg: string, start: () => Promise<Server>): Promise<Server | undefined> {
  const why = await ourLayerExists(pkg)
  if (why) {
    st.miss(key, pkg, why, false)
    return undefined
  }
  return st.add(key, pkg, start)
}

async function addTheirs(
  st: Starter,
  key: string,
  program: Program,
  programs: Programs,
  start: (path: string) => Promise<Server>,
): Promise<Server | undefined> {
  const path = programs.path[program]
  if (!path) {
    st.miss(key, program, programs.why(program), true)
    return undefined
  }
  return st.add(key, program, () => start(path))
}

export async function startCeiling(ctx: BenchContext, programs: Programs): Promise<Started> {
  const st = new Starter()
  const origin = await st.add('origin', 'fast origin (node net)', () => startNodePeer(ctx, 'fast origin (node net)', 'origin', []))
  let tls: Server | undefined
  await addTheirs(st, 'nginx-200', 'nginx', programs, async (p) => {
    const both = await startNginxCeiling(ctx, p)
    tls = both.tls
    return both.http
  })
  st.slots['nginx-tls'] = tls ?? st.slots['nginx-200'] ?? { missing: 'not started', name: 'nginx', absent: false }
  await st.add('app', 'echo app', () => startNodePeer(ctx, 'echo app', 'app', []))
  return { slots: st.slots, originPort: origin?.port, stop: st.stop }
}

/** Scenarios 1-2: static-server and nginx from the same nginx.conf, serve-static beside them. */
export async function startStatic(ctx: BenchContext, programs: Programs): Promise<Started> {
  const st = new Starter()
  const origin = await st.add('origin', 'fast origin', () => startNodePeer(ctx, 'fast origin', 'origin', []))
  const appPort = origin?.port ?? 9
  await addOurs(st, 'ours', 'static-server', () => startStaticServer(ctx, appPort))
  await addTheirs(st, 'theirs', 'nginx', programs, (p) => startNginx(ctx, p, appPort))
  await st.add('serve-static', 'serve-static', () => startNodePeer(ctx, 'serve-static', 'static-peer', ['--root', ctx.root]))
  return { slots: st.slots, originPort: origin?.port, stop: st.stop }
}

/**
 * Scenario 18 (issue 18): static-server and nginx from one nginx.conf with `worker_processes
 * auto` (one worker a CPU), both unpinned so that every worker has a CPU to run on; the load
 * generator stays on its half, as in every scenario.
 */
export async function startStaticWorkers(ctx: BenchContext, programs: Programs): Promise<Started> {
  const st = new Starter()
  const unpinned = { ...ctx, serverCpus: undefined }
  const origin = await st.add('origin', 'fast origin', () => startNodePeer(ctx, 'fast origin', 'origin', []))
  const appPort = origin?.port ?? 9
  await addOurs(st, 'ours', 'static-server', () => startStaticServer(unpinned, appPort, 'auto'))
  await addTheirs(st, 'theirs', 'nginx', programs, (p) => startNginx(unpinned, p, appPort, 'auto'))
  return { slots: st.slots, originPort: origin?.port, stop: st.stop }
}

/** Scenarios 3-4: caching-router and varnishd from the same VCL, both backends the fast origin. */
export async function startRouter(ctx: BenchContext, programs: Programs): Promise<Started> {
  const st = new Starter()
  const origin = await st.add('origin', 'fast origin', () => startNodePeer(ctx, 'fast origin', 'origin', []))
  if (!origin) return { slots: st.slots, stop: st.stop }
  const backends = { nginxPort: origin.port, nodePort: origin.port }
  await addOurs(st, 'ours', 'caching-router', () => startCachingRouter(ctx, backends))
  await addOurs(st, 'router-builtin', 'caching-router', () => startCachingRouter(ctx, backends, { builtin: true }))
  await addTheirs(st, 'theirs', 'varnishd', programs, (p) => startVarnishd(ctx, p, backends))
  await st.add('http-proxy', 'node-http-proxy', () => startNodePeer(ctx, 'node-http-proxy', 'proxy-peer', ['--target', `127.0.0.1:${origin.port}`]))
  return { slots: st.slots, originPort: origin.port, stop: st.stop }
}

/**
 * Scenario 11: caching-router and varnishd both with `-p feature=+http2`, the same VCL, to the
 * fast origin; h2c with prior knowledge. Its own group, so the HTTP/1.1 scenarios keep their
 * configuration. The same through TLS is scenario 16 (startChainsH2).
 */
export async function startRouterH2(ctx: BenchContext, programs: Programs): Promise<Started> {
  const st = new Starter()
  const origin = await st.add('origin', 'fast origin', () => startNodePeer(ctx, 'fast origin', 'origin', []))
  if (!origin) return { slots: st.slots, stop: st.stop }
  const backends = { nginxPort: origin.port, nodePort: origin.port }
  const params = ['-p', 'feature=+http2']
  await addOurs(st, 'ours', 'caching-router', () => startCachingRouter(ctx, backends, { params }))
  await addTheirs(st, 'theirs', 'varnishd', programs, (p) => startVarnishd(ctx, p, backends, params))
  return { slots: st.slots, originPort: origin.port, stop: st.stop }
}

/**
 * Scenario 15 (issue 18): caching-router with `--workers 2` (one cache across two worker
 * threads) against varnishd with its default thread pools (two), the same VCL, both unpinned
 * on the machine with the load generator alongside. Its own group: scenario 3 stays one worker.
 */
export async function startRouterWorkers(ctx: BenchContext, programs: Programs): Promise<Started> {
  const st = new Starter()
  const origin = await st.add('origin', 'fast origin', () => startNodePeer(ctx, 'fast origin', 'origin', []))
  if (!origin) return { slots: st.slots, stop: st.stop }
  const backends = { nginxPort: origin.port, nodePort: origin.port }
  await addOurs(st, 'ours', 'caching-router', () => startCachingRouter(ctx, backends, { params: ['--workers', '2'] }))
  await addTheirs(st, 'theirs', 'varnishd', programs, (p) => startVarnishd(ctx, p, backends))
  return { slots: st.slots, originPort: origin.port, stop: st.stop }
}

/** Scenarios 5-6: tls-terminator and stunnel from the same stunnel.conf, to the fast origin. */
export async function startTls(ctx: BenchContext, programs: Programs): Promise<Started> {
  const st = new Starter()
  const origin = await st.add('origin', 'fast origin', () => startNodePeer(ctx, 'fast origin', 'origin', []))
  if (!origin) return { slots: st.slots, stop: st.stop }
  await addOurs(st, 'ours', 'tls-terminator', () => startTlsTerminator(ctx, origin.port))
  await addTheirs(st, 'theirs', 'stunnel', programs, (p) => startStunnel(ctx, p, origin.port))
  await st.add('tls-pipe', 'node:tls + net pipe', () =>
    startNodePeer(ctx, 'node:tls + net pipe', 'tls-pipe', [
      '--target',
      `127.0.0.1:${origin.port}`,
      '--cert',
      ctx.cert,
      '--key',
      ctx.key,
    ]),
  )
  return { slots: st.slots, originPort: origin.port, stop: st.stop }
}

/** Scenarios 7-8: the article's chain, ours end to end against stunnel -> varnishd -> nginx. */
export async function startChains(ctx: BenchContext, programs: Programs): Promise<Started> {
  const st = new Starter()
  const app = await st.add('app', 'echo app', () => startNodePeer(ctx, 'echo app', 'app', []))
  if (!app) return { slots: st.slots, stop: st.stop }
  const oursMissing =
    (await ourLayerExists('static-server')) ??
    (await ourLayerExists('caching-router')) ??
    (await ourLayerExists('tls-terminator'))
  if (oursMissing) st.miss('ours', 'edgestack chain', oursMissing, false)
  else
    await st.add('ours', 'edgestack chain', () =>
      chain('edgestack chain', 'ours', [
        () => startStaticServer(ctx, app.port),
        (stat) => startCachingRouter(ctx, { nginxPort: stat, nodePort: app.port }),
        (router) => startTlsTerminator(ctx, router),
      ]),
    )
  const absent = (['nginx', 'varnishd', 'stunnel'] as const).find((p) => !programs.path[p])
  if (absent) st.miss('theirs', 'stunnel -> varnishd -> nginx', programs.why(absent), true)
  else
    await st.add('theirs', 'stunnel -> varnishd -> nginx', () =>
      chain('stunnel -> varnishd -> nginx', 'theirs', [
        () => startNginx(ctx, programs.path.nginx as string, app.port),
        (stat) => startVarnishd(ctx, programs.path.varnishd as string, { nginxPort: stat, nodePort: app.port }),
        (router) => startStunnel(ctx, programs.path.stunnel as string, router),
      ]),
    )
  return { slots: st.slots, stop: st.stop }
}

/**
 * Scenario 15: issue 19's HTTP/2 deployment on the cache-hit path. One hitch.conf (ALPN
 * `h2, http/1.1`, `write-proxy-v2 = on`) starts tls-terminator and hitch; each hands PROXY v2 to
 * its router's PROXY listener, caching-router or varnishd with `-p feature=+http2` on the same
 * VCL, both backends the fast origin. The layers' own logs are as in scenario 7 (none of hitch's
 * or varnishd's defaults changed).
 */
export async function startChainsH2(ctx: BenchContext, programs: Programs): Promise<Started> {
  const st = new Starter()
  const origin = await st.add('origin', 'fast origin', () => startNodePeer(ctx, 'fast origin', 'origin', []))
  if (!origin) return { slots: st.slots, stop: st.stop }
  const backends = { nginxPort: origin.port, nodePort: origin.port }
  const params = ['-p', 'feature=+http2']
  const oursMissing = (await ourLayerExists('caching-router')) ?? (await ourLayerExists('tls-terminator'))
  if (oursMissing) st.miss('ours', 'tls-terminator -> caching-router', oursMissing, false)
  else
    await st.add('ours', 'tls-terminator -> caching-router', () =>
      chain('tls-terminator -> caching-router', 'ours', [
        () => startCachingRouter(ctx, backends, { params, proxy: true }),
        (router) => startTlsTerminatorHitch(ctx, router),
      ]),
    )
  const absent = (['varnishd', 'hitch'] as const).find((p) => !programs.path[p])
  if (absent) st.miss('theirs', 'hitch -> varnishd', programs.why(absent), true)
  else
    await st.add('theirs', 'hitch -> varnishd', () =>
      chain('hitch -> varnishd', 'theirs', [
        () => startVarnishd(ctx, programs.path.varnishd as string, backends, params, true),
        (router) => startHitch(ctx, programs.path.hitch as string, router),
      ]),
    )
  return { slots: st.slots, originPort: origin.port, stop: st.stop }
}

/**
 * Scenario 17 (issue 18): the sticky setup of `npm start -- --app-instances 3`, ours against
 * stunnel -> varnishd -> nginx, each chain with its own three demo-app instances and Redis,
 * started by the e2e launcher from the files in config/ (stunnel-proxy.conf's PROXY line into
 * the router's PROXY listener, default.vcl's hash director on client.identity). Unpinned: the
 * launcher starts eight processes a chain, more than the server half of the CPUs would hold.
 */
export async function startScale(_ctx: BenchContext, programs: Programs): Promise<Started> {
  const st = new Starter()
  // The launcher is e2e's (compiled beside it, as scripts/start.ts loads it).
  const { startStack } = (await import(new URL('../../e2e/dist/stack.js', import.meta.url).href)) as typeof StackModule
  const stackServer = async (name: string, role: 'ours' | 'theirs', real: Array<'tls' | 'router' | 'static'>): Promise<Server> => {
    const stack = await startStack({ real, appInstances: 3 })
    return { name, role, port: stack.ports.tls, procs: [], stop: stack.stop }
  }
  const oursMissing = (await ourLayerExists('static-server')) ?? (await ourLayerExists('caching-router')) ?? (await ourLayerExists('tls-terminator'))
  if (oursMissing) st.miss('ours', 'edgestack chain, 3 app instances', oursMissing, false)
  else await st.add('ours', 'edgestack chain, 3 app instances', () => stackServer('edgestack chain, 3 app instances', 'ours', []))
  const absent = (['nginx', 'varnishd', 'stunnel'] as const).find((p) => !programs.path[p])
  if (absent) st.miss('theirs', 'stunnel -> varnishd -> nginx, 3 app instances', programs.why(absent), true)
  else await st.add('theirs', 'stunnel -> varnishd -> nginx, 3 app instances', () => stackServer('stunnel -> varnishd -> nginx, 3 app instances', 'theirs', ['tls', 'router', 'static']))
  return { slots: st.slots, stop: st.stop }
}

/** Starts the layers innermost first, each given the port of the one behind it. */
async function chain(
  name: string,
  role: 'ours' | 'theirs',
  layers: [() => Promise<Server>, ...((port: number) => Promise<Server>)[]],
): Promise<Server> {
  const started: Server[] = []
  const stop = async () => {
    await Promise.all(started.reverse().map((s) => s.stop()))
  }
  try {
    const [first, ...rest] = layers
    started.push(await first())
    for (const next of rest) started.push(await next((started.at(-1) as Server).port))
  } catch (err) {
    await stop()
    throw err
  }
  const front = started.at(-1) as Server
  const from = started.map((s) => s.startedFrom).filter((f) => f !== undefined)
  return {
    name,
    role,
    port: front.port,
    procs: started.flatMap((s) => s.procs),
    startedFrom: from.length > 0 && from.every((f) => f === 'config') ? 'config' : from.length > 0 ? 'flags' : undefined,
    stop,
  }
}
