import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { devCertificatePaths, ensureDevCertificates } from '@edgestack/tls-terminator'
import { type Ports, type RenderedConfigs, renderConfigs } from './configs.js'
import { LAYER_SPECS, type Layer, type LayerContext, missingProgram, programMissing, realProgram, type TlsConfig } from './layers.js'
import { freePort } from './ports.js'
import { type Daemon, ProcessStartError, REPO, startDaemon, startProcess } from './processes.js'

export const CERT_DIR = `${REPO}.certs`
export const PUBLIC_DIR = `${REPO}packages/demo-app/public`

export interface Stack {
  /** The first app instance (the only one unless `appInstances` was given). */
  app: Daemon
  /** Every app instance, in port order. */
  apps: Daemon[]
  /** The Redis the instances share (only with more than one instance). */
  redis: Daemon | undefined
  static: Daemon
  router: Daemon
  tls: Daemon
  /** Which layers are the real programs. */
  real: ReadonlySet<Layer>
  ports: Ports
  configs: RenderedConfigs
  httpsUrl: string
  httpUrl: string
  caCert: string
  /** Path of the dev CA certificate a browser or curl should trust. */
  caCertFile: string
  /** Stops every process (idempotent) and removes the temp folder. */
  stop(): Promise<void>
  /** Every process this stack started, for proving none is left behind. */
  daemons(): Daemon[]
}

export interface StackOptions {
  /** Layers to run as the real stunnel (or hitch) / varnishd / nginx. */
  real?: readonly Layer[]
  /**
   * The TLS layer's file: config/stunnel.conf (the default for one app instance),
   * config/stunnel-proxy.conf (the default for several: the hash director must see each
   * browser's address) or config/hitch.conf (ours or hitch).
   */
  tlsConfig?: TlsConfig
  /** Fixed ports (npm start: the dev ports); free loopback ports by default. */
  ports?: Ports
  /**
   * How many demo-app instances (default 1). With fixed ports they take ports.app, +1, ...;
   * with more than one, Debian's redis-server is started on a free loopback port for them.
   */
  appInstances?: number
  /** The redis-server to run (Debian's by default). */
  redisServer?: string
  /** Receives every chunk any process writes, labelled by layer. */
  echo?: (name: string, chunk: string) => void
  /** Told of every process as soon as it runs, even if the stack then fails to start. */
  onStart?: (d: Daemon) => void
}

export class MissingProgramError extends Error {}

export const REDIS_SERVER = { program: '/usr/bin/redis-server', debianPackage: 'redis-server' } as const

/**
 * The article's chain, started from the app outwards, each layer ours or the real program, all
 * from generated copies of config/ with the ports filled in. On any failure everything already
 * started is stopped before the error is thrown.
 */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const real = new Set(opts.real ?? [])
  const instances = opts.appInstances ?? 1
  const tlsConfig = opts.tlsConfig ?? defaultTlsConfig(instances)
  const missing = (
    await Promise.all([
      ...[...real].map((l) => missingProgram(l, tlsConfig)),
      instances > 1 ? programMissing(opts.redisServer ?? REDIS_SERVER.program, REDIS_SERVER.debianPackage) : undefined,
    ])
  ).filter((m) => m !== undefined)
  if (missing.length > 0) throw new MissingProgramError(missing.join('\n'))
  await ensureDevCertificates(CERT_DIR)
  const more = (first: number, pick: (i: number) => Promise<number>) =>
    Promise.all(Array.from({ length: instances }, (_, i) => (i === 0 ? first : pick(i))))
  if (opts.ports) {
    const app = opts.ports.app
    return startOn(opts.ports, await more(app, async (i) => app + i), real, opts)
  }
  // A port found free can be taken by another test before the layer binds it (the real programs
  // cannot bind port 0 and report it): on that clash only, try again on fresh ports, bounded.
  for (let attempt = 1; ; attempt++) {
    const ports = { tls: await freePort(), router: await freePort(), static: await freePort(), app: await freePort(), proxy: await freePort() }
    try {
      return await startOn(ports, await more(ports.app, freePort), real, opts)
    } catch (err) {
      if (attempt === 3 || !(err instanceof ProcessStartError) || !/already in use|EADDRINUSE/i.test(err.message)) throw err
    }
  }
}

/** Several app instances are reached through default.vcl's hash director on client.identity: the browser's address must get through the TLS hop. */
export const defaultTlsConfig = (appInstances: number): TlsConfig => (appInstances > 1 ? 'stunnel-proxy' : 'stunnel')

/** Debian's redis-server on a loopback port, persisting nothing (the app keeps no data in it). */
export function startRedis(port: number, opts: { echo?: (chunk: string) => void; cwd?: string; program?: string } = {}): Promise<Daemon> {
  const args = ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no']
  return startProcess('redis', opts.program ?? REDIS_SERVER.program, args, { port }, opts)
}

async function startOn(ports: Ports, appPorts: number[], real: ReadonlySet<Layer>, opts: StackOptions): Promise<Stack> {
  const certs = devCertificatePaths(CERT_DIR)
  const dir = await mkdtemp(join(tmpdir(), 'edgestack-'))
  const started: Daemon[] = []
  let stopping: Promise<void> | undefined
  const stop = () => {
    stopping ??= Promise.all([...started].reverse().map((d) => d.stop())).then(() => rm(dir, { recursive: true, force: true }))
    return stopping
  }
  try {
    const configs = await renderConfigs(dir, ports, appPorts)
    const ctx: LayerContext = { ports, configs, tlsConfig: opts.tlsConfig ?? defaultTlsConfig(appPorts.length) }
    const echo = (name: string) => (opts.echo ? (chunk: string) => opts.echo?.(name, chunk) : undefined)
    const layer = async (name: Layer): Promise<Daemon> => {
      const spec = LAYER_SPECS[name]
      const program = realProgram(name, ctx.tlsConfig)
      const port = ports[name]
      const d = real.has(name)
        ? await startProcess(name, program.program, program.args(ctx), { port }, { echo: echo(name), cwd: dir, pipe: program.needsPipe })
        : await startDaemon(spec.pkg, spec.ours(ctx), { port, echo: echo(name) })
      started.push(d)
      opts.onStart?.(d)
      return d
    }
    const track = (d: Daemon) => {
      started.push(d)
      opts.onStart?.(d)
      return d
    }
    // Several instances share broadcasts through a Redis of their own: nothing persisted, on
    // loopback only (redis-server cannot bind port 0 and report it, hence a free port).
    const redis = appPorts.length > 1 ? track(await startRedis(await freePort(), { echo: echo('redis'), cwd: dir, program: opts.redisServer })) : undefined
    // The instances start together; if one fails, the others are still tracked for stop().
    const starting = await Promise.allSettled(
      appPorts.map(async (port, i) => {
        const args = ['--listen', `127.0.0.1:${port}`, ...(redis ? ['--redis', `redis://127.0.0.1:${redis.port}`] : [])]
        return track(await startDaemon('demo-app', args, { port, echo: echo(appPorts.length > 1 ? `app${i + 1}` : 'app') }))
      }),
    )
    const failed = starting.find((r) => r.status === 'rejected')
    if (failed) throw failed.reason
    const apps = starting.map((r) => (r as PromiseFulfilledResult<Daemon>).value)
    const app = apps[0] as Daemon
    const stat = await layer('static')
    const router = await layer('router')
    const tls = await layer('tls')
    return {
      app,
      apps,
      redis,
      static: stat,
      router,
      tls,
      real,
      ports,
      configs,
      httpsUrl: `https://localhost:${ports.tls}`,
      httpUrl: `http://127.0.0.1:${ports.router}`,
      caCert: await readFile(certs.caCert, 'utf8'),
      caCertFile: certs.caCert,
      stop,
      daemons: () => [...started],
    }
  } catch (err) {
    await stop()
    throw err
  }
}
