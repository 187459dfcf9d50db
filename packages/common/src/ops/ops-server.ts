import { createServer, type Server } from 'node:http'
import { type HostPort, formatAddress } from '../address.js'
import { StartupError, UsageError } from '../errors.js'
import { processMetrics } from './process-metrics.js'
import { type MetricFamily, PROMETHEUS_CONTENT_TYPE, renderMetrics } from './prometheus-text.js'

export interface OpsServerOptions {
  /** `--metrics ADDR`. */
  address: HostPort
  /**
   * `--drain-delay`: after a stop signal, how long `/readyz` says 503 while the listeners still
   * accept, before the drain starts: the time an orchestrator needs to stop sending (0: none).
   */
  drainDelayMs?: number
  /** The daemon's own families (summed over the children, for a manager). */
  collect(): Promise<readonly MetricFamily[]> | readonly MetricFamily[]
}

const BIND_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'cannot assign requested address',
  EACCES: 'permission denied',
}

/**
 * The operations side port of `--metrics ADDR` (an edgestack extension; none of the real
 * programs has one): `/healthz` is 200 while the process lives, `/readyz` 200 once the daemon
 * serves and 503 from the moment a stop order arrives (beforeStop, before any listening socket
 * closes, and for `drainDelayMs` while they still accept: an orchestrator stops sending
 * first), `/metrics` Prometheus text. It answers during the drain and never keeps a stopping process alive.
 */
export class OpsServer {
  readonly #opts: OpsServerOptions
  readonly #server: Server
  #ready = false
  #draining = false

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
    const bound = this.#server.address()
    return typeof bound === 'object' && bound ? { host: address.host, port: bound.port } : address
  }

  /** The daemon serves now. */
  markReady(): void {
    this.#ready = true
  }

  /**
   * The daemon layer's `beforeStop` (service.ts, manager.ts): called as a stop order arrives,
   * before any listener closes. `/readyz` turns 503 at once; the stop goes on after the delay.
   */
  readonly beforeStop = (): Promise<void> => {
    this.#draining = true
    const ms = this.#opts.drainDelayMs ?? 0
    return ms === 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms))
  }

  close(): void {
    this.#server.close()
  }

  #reply(res: import('node:http').ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...headers })
    res.end(res.req.method === 'HEAD' ? undefined : body)
  }
}

/** `--drain-delay SEC`: whole seconds, 0 to 3600; only with --metrics, whose /readyz it is for. */
export function parseDrainDelay(text: string | undefined, metrics: boolean): number {
  if (text === undefined) return 0
  if (!metrics) throw new UsageError('--drain-delay needs --metrics: the delay is for /readyz to be seen')
  if (!/^\d{1,4}$/.test(text) || Number(text) > 3600) throw new UsageError(`--drain-delay: "${text}" is not a number of seconds from 0 to 3600`)
  return Number(text) * 1000
}
