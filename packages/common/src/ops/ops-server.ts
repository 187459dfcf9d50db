import { createServer, type Server } from 'node:http'
import { type HostPort, formatAddress } from '../address.js'
import { StartupError } from '../errors.js'
import { processMetrics } from './process-metrics.js'
import { type MetricFamily, PROMETHEUS_CONTENT_TYPE, renderMetrics } from './prometheus-text.js'

export interface OpsServerOptions {
  /** `--metrics ADDR`. */
  address: HostPort
  /** The daemon's own families (summed over the children, for a manager). */
  collect(): Promise<readonly MetricFamily[]> | readonly MetricFamily[]
}

const BIND_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'cannot assign requested address',
  EACCES: 'permission denied',
}

/** The signals that start a drain (signals.ts' table): readiness ends as they arrive. */
const DRAIN_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGQUIT']

/**
 * The operations side port of `--metrics ADDR` (an edgestack extension; none of the real
 * programs has one): `/healthz` is 200 while the process lives, `/readyz` 200 once the daemon
 * serves and 503 from the moment a stop signal arrives (its listener runs before the daemon's
 * own, so before any listening socket closes: an orchestrator stops sending first), `/metrics`
 * Prometheus text. It answers during the drain and never keeps a stopping process alive.
 */
export class OpsServer {
  readonly #opts: OpsServerOptions
  readonly #server: Server
  #ready = false
  #draining = false
  readonly #onSignal = new Map<NodeJS.Signals, () => void>()

  constructor(opts: OpsServerOptions) {
    this.#opts = opts
    this.#server = createServer((req, res) => {
      // One request a connection: an idle keep-alive scraper must not hold a stopping process.
      res.shouldKeepAlive = false
      const path = (req.url ?? '/').split('?', 1)[0]
      if (req.method !== 'GET' && req.method !== 'HEAD') return this.#reply(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' })
      if (path === '/healthz') return this.#reply(res, 200, 'ok\n')
      if (path === '/readyz') {
        if (this.#draining) return this.#reply(res, 503, 'draining\n')
        return this.#ready ? this.#reply(res, 200, 'ready\n') : this.#reply(res, 503, 'starting\n')
      }
      if (path === '/metrics') {
        Promise.resolve(this.#opts.collect()).then(
          (families) => this.#reply(res, 200, renderMetrics([...families, ...processMetrics()]), { 'Content-Type': PROMETHEUS_CONTENT_TYPE }),
          (err: Error) => this.#reply(res, 500, `${err.message}\n`),
        )
        return
      }
      this.#reply(res, 404, 'not found\n')
    })
    this.#server.on('clientError', (_err, socket) => socket.destroy())
  }

  /** Binds `--metrics`; a taken or bad address is a start-up error (one line, exit 1). */
  async listen(): Promise<HostPort> {
    const { address } = this.#opts
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new StartupError(`--metrics ${formatAddress(address)}: ${BIND_ERRORS[err.code ?? ''] ?? err.message}`, { cause: err })),
      )
      this.#server.listen({ host: address.host, port: address.port }, resolve)
    })
    this.#server.unref()
    for (const signal of DRAIN_SIGNALS) {
      const handler = () => {
        this.#draining = true
        // Alone, this listener would have turned the signal's default action (exit) off.
        if (process.listenerCount(signal) === 1) {
          process.off(signal, handler)
          process.kill(process.pid, signal)
        }
      }
      this.#onSignal.set(signal, handler)
      process.prependListener(signal, handler)
    }
    const bound = this.#server.address()
    return typeof bound === 'object' && bound ? { host: address.host, port: bound.port } : address
  }

  /** The daemon serves now. */
  markReady(): void {
    this.#ready = true
  }

  /** For a drain that does not start with a signal (a manager's own stop). */
  markDraining(): void {
    this.#draining = true
  }

  close(): void {
    for (const [signal, handler] of this.#onSignal) process.off(signal, handler)
    this.#server.close()
  }

  #reply(res: import('node:http').ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...headers })
    res.end(res.req.method === 'HEAD' ? undefined : body)
  }
}
