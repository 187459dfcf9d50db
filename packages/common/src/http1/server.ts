import { chmod } from 'node:fs/promises'
import net from 'node:net'
import { STATUS_CODES } from 'node:http'
import type { HostPort } from '../address.js'
import { StartupError } from '../errors.js'
import { listenOn } from '../daemon/listen-fds.js'
import { connectionBudget, openFileLimit } from '../descriptor-limit.js'
import { Http1Connection } from './connection.js'
import type { Http1ParseError } from './errors.js'
import { DEFAULT_LIMITS, type Http1Limits } from './parse-head.js'
import type { Http1Request, PeerAddresses } from './request.js'
import type { Http1Response } from './response.js'

export interface Http1ServerOptions {
  onRequest(req: Http1Request, res: Http1Response): void
  limits?: Partial<Http1Limits>
  /** Time allowed for a whole request head from its first byte (slowloris; nginx `client_header_timeout`). */
  headerTimeoutMs?: number
  /**
   * Time allowed between two reads of a request body while we wait for it (nginx
   * `client_body_timeout`); a body that stops arriving gets 408 and a close.
   */
  bodyTimeoutMs?: number
  /**
   * Time a response may make no progress towards a client that does not read it (nginx
   * `send_timeout`, varnish `send_timeout`); the connection is then closed.
   */
  sendTimeoutMs?: number
  /** Idle time allowed between requests (varnish `timeout_idle`, nginx `keepalive_timeout`). */
  keepAliveTimeoutMs?: number
  /** Expect a PROXY protocol v1/v2 header before the first request (varnishd `-a ...,PROXY`). */
  proxyProtocol?: boolean
  /**
   * HTTP/1.1 answers that keep the connection carry `Connection: keep-alive`, as nginx writes
   * them (ngx_http_header_filter); without it only HTTP/1.0 ones do, as varnishd writes them.
   */
  announceKeepAlive?: boolean
  /**
   * What to send for a request we cannot read, before closing. The default is a bare
   * status line; daemons return their real twin's error page. Undefined: close silently.
   */
  errorResponse?(err: Http1ParseError, peer: PeerAddresses): Buffer | string | undefined
  /** Told about every unreadable request, for the logs, with the bytes read of its head. */
  onClientError?(err: Http1ParseError, peer: PeerAddresses, head?: Buffer): void
  /**
   * Most simultaneous connections; further ones are closed at accept, before a byte is read.
   * Unset (and no sharedLimit): what RLIMIT_NOFILE allows, two descriptors a client (its own
   * and a backend's) after a reserve (descriptor-limit.ts), read when the server starts listening.
   */
  maxConnections?: number
  /**
   * A limit shared by several servers (nginx's worker_connections covers every listening
   * address of a worker). At it, idle connections make room as in nginx (ConnectionLimit.reuse);
   * with none idle, a new connection is closed at once.
   */
  sharedLimit?: ConnectionLimit
  /**
   * Told about idle connections closed to make room ('reused'), a connection closed at a limit
   * ('limit'), or an accept(2) that failed (EMFILE: the descriptor limit), for the logs. Without
   * it all are silent; none stops the server.
   */
  onRefused?(why: 'reused' | 'limit' | Error): void
  /**
   * A connection that opens with the HTTP/2 preface (RFC 9113 §3.4, "prior knowledge"; after
   * a PROXY header too) is handed over with every byte read so far, preface first, and the
   * peer's addresses (the PROXY header's). Without it the preface is read as an HTTP/1
   * request line, and refused (505).
   */
  onHttp2Preface?(socket: net.Socket, bytes: Buffer, peer: PeerAddresses): void
  /** Told about each connection taken (past the limits), for counters (varnishd's sess_conn). */
  onAccepted?(): void
}

/** The open connections of the servers sharing one limit, oldest first, and the limit. */
export class ConnectionLimit {
  readonly open = new Set<Http1Connection>()
  constructor(readonly limit: number) {}

  /**
   * nginx's ngx_drain_connections: the oldest idle connections (waiting for a first or next
   * request) are closed to make room, max(min(32, idle / 8), 1) of them. False: none was idle.
   */
  reuse(): boolean {
    let idle = 0
    for (const c of this.open) if (c.idle) idle++
    if (idle === 0) return false
    let n = Math.max(Math.min(32, Math.floor(idle / 8)), 1)
    for (const c of this.open) {
      if (n === 0) break
      if (!c.idle) continue
      this.open.delete(c)
      c.socket.destroy()
      n--
    }
    return true
  }
}

export interface Http1Server {
  /** Listens on `address` (or on the socket a manager handed down for it: daemon/listen-fds.ts). */
  listen(address: HostPort, opts?: { reusePort?: boolean }): Promise<HostPort>
  /**
   * A Unix-domain socket at `path` (which must not exist), then `chmod` to `mode` if given.
   * Its requests have an empty remoteAddress and localAddress, and port 0.
   */
  listenPath(path: string, mode?: number): Promise<void>
  /** Serves a connection accepted by a listener this server does not own (daemon/listener-set.ts). */
  accept(socket: net.Socket): void
  /** Stops accepting; idle connections close now, busy ones after their response; then destroys. */
  close(opts?: { drainTimeoutMs?: number }): Promise<void>
  readonly connectionCount: number
  readonly server: net.Server
}

/** A minimal answer for an unreadable request: status line, Connection: close, no body. */
export function defaultErrorResponse(err: Http1ParseError): string | undefined {
  // nginx terminates a timed-out request without an answer (ngx_http_finalize_request with 408).
  if (err.kind === 'header-timeout' || err.kind === 'body-timeout' || err.kind === 'proxy-protocol') return undefined
  return `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`
}

/**
 * Our HTTP/1.1 server core, shared by caching-router and static-server. Written for the two
 * things Node's http module cannot give us: the strict parsing a proxy in front of other
 * parsers needs (see parse-head.ts), and throughput close to varnishd and nginx, which
 * node:http's per-request object churn caps well below them (measured in bench/).
 */
export function createHttp1Server(opts: Http1ServerOptions): Http1Server {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits }
  const connections = new Set<Http1Connection>()
  const connectionOptions = {
    limits,
    headerTimeoutMs: opts.headerTimeoutMs ?? 60_000,
    keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? 5_000,
    bodyTimeoutMs: opts.bodyTimeoutMs ?? 60_000,
    sendTimeoutMs: opts.sendTimeoutMs ?? 60_000,
    proxyProtocol: opts.proxyProtocol ?? false,
    announceKeepAlive: opts.announceKeepAlive ?? false,
    onRequest: opts.onRequest,
    errorResponse: opts.errorResponse ?? defaultErrorResponse,
    onClientError: opts.onClientError ?? (() => {}),
    onHttp2Preface: opts.onHttp2Preface,
  }
  const shared = opts.sharedLimit
  const onClosed = (c: Http1Connection) => {
    connections.delete(c)
    shared?.open.delete(c)
    if (connections.size === 0) allClosed?.()
  }
  let allClosed: (() => void) | undefined
  let maxConnections = opts.maxConnections
  const accept = (socket: net.Socket) => {
    const atShared = shared !== undefined && shared.open.size >= shared.limit
    if (atShared && shared.reuse()) opts.onRefused?.('reused')
    else if (atShared || (maxConnections !== undefined && connections.size >= maxConnections)) {
      socket.on('error', () => {})
      socket.destroy()
      opts.onRefused?.('limit')
      return
    }
    const c = new Http1Connection(socket, connectionOptions, onClosed)
    opts.onAccepted?.()
    connections.add(c)
    shared?.open.add(c)
  }
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, accept)
  // One sweep a second enforces every connection's deadline: no timer per request.
  const sweep = setInterval(() => {
    const now = Date.now()
    for (const c of connections) c.checkDeadline(now)
  }, 1000)
  sweep.unref()

  let closing: Promise<void> | undefined
  return {
    server,
    get connectionCount() {
      return connections.size
    },
    async listen(address, listenOpts) {
      if (maxConnections === undefined && shared === undefined) {
        const limit = await openFileLimit()
        if (limit !== undefined) maxConnections = connectionBudget(limit)
      }
      const bound = await listenOn(server, address, listenOpts)
      // Past listen, an error is a failed accept (EMFILE when the descriptors are used up):
      // the client it was for is lost, the server goes on (libuv retries on the next one).
      server.on('error', (err) => opts.onRefused?.(err))
      return bound
    },
    async listenPath(path, mode) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) => reject(new StartupError(`cannot listen on ${path}: ${err.message}`, { cause: err })))
        server.listen(path, () => resolve())
      })
      server.on('error', (err) => opts.onRefused?.(err))
      if (mode !== undefined) {
        await chmod(path, mode).catch((err: Error) => {
          throw new StartupError(`cannot chmod ${path}: ${err.message}`, { cause: err })
        })
      }
    },
    accept,
    close({ drainTimeoutMs = 10_000 } = {}) {
      closing ??= new Promise<void>((resolve) => {
        const finish = () => {
          clearInterval(sweep)
          clearTimeout(timer)
          resolve()
        }
        const timer = setTimeout(() => {
          for (const c of connections) c.socket.destroy()
        }, drainTimeoutMs)
        timer.unref()
        let serverClosed = !server.listening
        const maybeDone = () => {
          if (serverClosed && connections.size === 0) finish()
        }
        allClosed = maybeDone
        if (!serverClosed) {
          server.close(() => {
            serverClosed = true
            maybeDone()
          })
        }
        for (const c of connections) c.drain()
        maybeDone()
      })
      return closing
    },
  }
}
