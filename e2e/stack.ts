import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { devCertificatePaths, ensureDevCertificates } from '@edgestack/tls-terminator'
import { type Ports, type RenderedConfigs, renderConfigs } from './configs.js'
import { LAYER_SPECS, type Layer, type LayerContext, missingProgram, realProgram, type TlsConfig } from './layers.js'
import { freePort } from './ports.js'
import { type Daemon, ProcessStartError, REPO, startDaemon, startProcess } from './processes.js'

export const CERT_DIR = `${REPO}.certs`
export const PUBLIC_DIR = `${REPO}packages/demo-app/public`

export interface Stack {
  app: Daemon
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
  /** The TLS layer's file: config/stunnel.conf (default) or config/hitch.conf (ours or hitch). */
  tlsConfig?: TlsConfig
  /** Fixed ports (npm start: the dev ports); free loopback ports by default. */
  ports?: Ports
  /** Receives every chunk any process writes, labelled by layer. */
  echo?: (name: string, chunk: string) => void
  /** Told of every process as soon as it runs, even if the stack then fails to start. */
  onStart?: (d: Daemon) => void
}

export class MissingProgramError extends Error {}

/**
 * The article's chain, started from the app outwards, each layer ours or the real program, all
 * from generated copies of config/ with the ports filled in. On any failure everything already
 * started is stopped before the error is thrown.
 */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const real = new Set(opts.real ?? [])
  const tlsConfig = opts.tlsConfig ?? 'stunnel'
  const missing = (await Promise.all([...real].map((l) => missingProgram(l, tlsConfig)))).filter((m) => m !== undefined)
  if (missing.length > 0) throw new MissingProgramError(missing.join('\n'))
  await ensureDevCertificates(CERT_DIR)
  if (opts.ports) return startOn(opts.ports, real, opts)
  // A port found free can be taken by another test before the layer binds it (the real programs
  // cannot bind port 0 and report it): on that clash only, try again on fresh ports, bounded.
  for (let attempt = 1; ; attempt++) {
    const ports = { tls: await freePort(), router: await freePort(), static: await freePort(), app: await freePort(), proxy: await freePort() }
    try {
      return await startOn(ports, real, opts)
    } catch (err) {
      if (attempt === 3 || !(err instanceof ProcessStartError) || !/already in use|EADDRINUSE/i.test(err.message)) throw err
    }
  }
}

async function startOn(ports: Ports, real: ReadonlySet<Layer>, opts: StackOptions): Promise<Stack> {
  const certs = devCertificatePaths(CERT_DIR)
  const dir = await mkdtemp(join(tmpdir(), 'edgestack-'))
  const started: Daemon[] = []
  let stopping: Promise<void> | undefined
  const stop = () => {
    stopping ??= Promise.all([...started].reverse().map((d) => d.stop())).then(() => rm(dir, { recursive: true, force: true }))
    return stopping
  }
  try {
    const configs = await renderConfigs(dir, ports)
    const ctx: LayerContext = { ports, configs, tlsConfig: opts.tlsConfig ?? 'stunnel' }
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
    const app = await startDaemon('demo-app', ['--listen', `127.0.0.1:${ports.app}`], { port: ports.app, echo: echo('app') })
    started.push(app)
    opts.onStart?.(app)
    const stat = await layer('static')
    const router = await layer('router')
    const tls = await layer('tls')
    return {
      app,
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
