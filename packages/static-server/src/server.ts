import {
  ConnectionLimit,
  createHttp1Server,
  formatAddress,
  type HostPort,
  type Http1ParseError,
  type Http1Request,
  type Http1Response,
  type Http1Server,
  httpDateNow,
  connectionBudget,
  ListenerSet,
  type Logger,
  type PeerAddresses,
} from '@edgestack/common'
import type { Socket } from 'node:net'
import { AccessLogs } from './access-log.js'
import type { ListenModel, NginxModel, ServerModel } from './config/model.js'
import { errorPageBody, SERVER, statusLineReason } from './error-page.js'
import { FileCache } from './file-cache.js'
import { handle } from './handler.js'
import { keepAliveLimits } from './keep-alive.js'
import { LimitZones } from './limits.js'
import { CacheZone } from './proxy-cache.js'
import { badRequest } from './request-checks.js'
import { realIpPhase } from './real-ip.js'
import { RefusedRequest } from './refused-request.js'
import { RequestState } from './request-state.js'
import { sendBuiltin } from './respond.js'
import { RegexMatchFailed } from './regex-match.js'
import { buildVirtualHosts, normalizeHost, selectServer, type VirtualHosts } from './server-select.js'
import { StubStatus, stubStatusText } from './stub-status.js'
import { Upstream } from './upstream.js'
import { parseTarget, splitAbsoluteForm } from './uri.js'
import type { VariableSource } from './variables.js'
import { captured } from './user-variables.js'
import { pacingOf } from './limit-rate.js'

export interface StaticServer {
  /** Binds every `listen` address; resolves with what was bound, in model order. */
  listen(): Promise<HostPort[]>
  close(opts?: { drainTimeoutMs?: number }): Promise<void>
  /** Opens the access_log files again by name (nginx's SIGUSR1, `-s reopen`). */
  reopenLogs(): void
}

interface Listener {
  address: ListenModel
  vhosts: VirtualHosts
  http: Http1Server
}

export interface StaticServerOptions {
  /** The process's descriptor limit (RLIMIT_NOFILE soft), when known: the connection limit respects it. */
  descriptorLimit?: number
  /** The process's stub_status counters, kept across reloads (a fresh one when not given). */
  stubStatus?: StubStatus
}


/**
 * The distinct addresses a model listens on, in the order the server binds them (one socket per
 * address, shared by the servers naming it): what a master holds for its workers.
 */
export function listenAddresses(model: NginxModel): ListenModel[] {
  return [...listenGroups(model).values()].map((g) => g.address)
}

function listenGroups(model: NginxModel): Map<string, { address: ListenModel; servers: ServerModel[] }> {
  const groups = new Map<string, { address: ListenModel; servers: ServerModel[] }>()
  for (const s of model.servers) {
    for (const l of s.listens) {
      const key = `${l.host}:${l.port}`
      let g = groups.get(key)
      if (!g) {
        g = { address: l, servers: [] }
        groups.set(key, g)
      }
      if (l.defaultServer && !g.address.defaultServer) g.address = l
      if (l.proxyProtocol) g.address = { ...g.address, proxyProtocol: true }
      if (!g.servers.includes(s)) g.servers.push(s)
    }
  }
  return groups
}

/**
 * nginx's job from its own config: every `server {}` block on its `listen` addresses, virtual
 * hosts by Host, the location phases in handler.ts, upstream pools shared by every location
 * that names them. `sockets`: the listening sockets, shared with the server this one replaces
 * on a reload (the addresses both name keep their socket; see ListenerSet).
 */
export function createStaticServer(model: NginxModel, logger: Logger, sockets = new ListenerSet(), opts: StaticServerOptions = {}): StaticServer {
  const upstreams = new Map<string, Upstream>()
  for (const [name, u] of model.upstreams) upstreams.set(name, new Upstream(u))
  const caches = new Map<string, CacheZone>()
  for (const [name, z] of model.cacheZones) caches.set(name, new CacheZone(z))

  const minValid = Math.min(...model.servers.map((s) => s.conf.openFileCache?.validMs ?? 0), Number.POSITIVE_INFINITY)
  const cache = new FileCache({
    validMs: Number.isFinite(minValid) ? minValid : 0,
    // Up to 2 MiB a file and 128 MiB in all are answered from memory (one write, no fd).
    maxBodyBytes: 2 * 1024 * 1024,
    maxTotalBodyBytes: 128 * 1024 * 1024,
    maxEntries: Math.max(...model.servers.map((s) => s.conf.openFileCache?.max ?? 10_000), 1000),
  })
  const logs = new AccessLogs()
  const stub = opts.stubStatus ?? new StubStatus()
  const deps = {
    cache,
    upstreams,
    caches,
    stubStatusText: () => stubStatusText(stub.counts()),
    limits: new LimitZones(model.limitZones),
    log: (level: string, msg: string) => (level === 'error' || level === 'crit' || level === 'alert' ? logger.error(msg) : level === 'warn' ? logger.warn(msg) : logger.info(msg)),
  }
  // nginx's $connection (a serial number per connection) and a serial per request: fields of
  // every error line a request causes (winston metadata; `--log-format json` gives them keys).
  const connectionIds = new WeakMap<object, number>()
  let connections = 0
  let requests = 0

  const groups = listenGroups(model)

  // nginx's worker_connections bounds a worker's connections over all its addresses; a client
  // can cost two descriptors here (its socket and an upstream's or a file's), so the descriptor
  // limit bounds it too. At the limit the oldest idle connections make room (nginx's warning);
  // with none idle a new connection is closed at once (nginx's alert). Each line at most once
  // a second.
  const fdBudget = opts.descriptorLimit === undefined ? Number.POSITIVE_INFINITY : connectionBudget(opts.descriptorLimit)
  const limit = new ConnectionLimit(Math.max(1, Math.min(model.workerConnections, fdBudget)))
  const lastLogged = { reused: 0, limit: 0, accept: 0 }
  const onRefused = (why: 'reused' | 'limit' | Error) => {
    // ngx_event_accept counts a connection accepted, and handled only once it has a slot.
    if (why === 'limit') stub.handled--
    const kind = why instanceof Error ? 'accept' : why
    const now = Date.now()
    if (now - lastLogged[kind] < 1000) return
    lastLogged[kind] = now
    if (why === 'reused') logger.warn(`[warn] ${limit.limit} worker_connections are not enough, reusing connections`)
    else if (why === 'limit') logger.error(`[alert] ${limit.limit} worker_connections are not enough`)
    else logger.error(`[crit] accept() failed (${why.message})`)
  }

  const listeners: Listener[] = []
  for (const [key, g] of groups) {
    const vhosts = buildVirtualHosts(g.servers, (s) => s.listens.some((l) => `${l.host}:${l.port}` === key && l.defaultServer))
    const d = vhosts.defaultServer
    const lb = d.largeHeaderBuffers
    const http = createHttp1Server({
      limits: { maxRequestLineBytes: lb.size, maxFieldLineBytes: lb.size, maxHeadBytes: lb.size * lb.count, maxHeaderCount: 1000 },
      headerTimeoutMs: d.headerTimeoutMs,
      keepAliveTimeoutMs: d.keepAliveTimeoutMs,
      proxyProtocol: g.address.proxyProtocol,
      announceKeepAlive: true,
      errorResponse: (err) => parseErrorResponse(err, d.conf.serverTokens),
      onClientError: (err, peer, head) => {
        // nginx counts a request once its first bytes arrived (ngx_http_alloc_request).
        if (head !== undefined && head.length > 0 && err.kind !== 'proxy-protocol') stub.requests++
        logger.info(`client ${(peer.connection ?? peer).remoteAddress}: ${err.message}`)
        logRefused(err, peer, head, vhosts)
      },
      onRequest: (req, res) => onRequest(req, res, vhosts),
      sharedLimit: limit,
      onRefused,
    })
    listeners.push({ address: g.address, vhosts, http })
  }

  const onRequest = (req: Http1Request, res: Http1Response, vhosts: VirtualHosts) => {
    stub.requests++
    let host = normalizeHost(req.header('host'))
    let raw = req.target
    // The host of an absolute-form target wins over the Host field (RFC 9112 §3.2.2), which
    // must still be valid, as in nginx ($host is the target's, $http_host the field's).
    if (raw.charCodeAt(0) !== 0x2f && raw !== '*') {
      const abs = splitAbsoluteForm(raw)
      if (abs === undefined) host = undefined
      else if (host !== undefined) {
        host = normalizeHost(abs.host)
        raw = abs.target
      }
    }
    let sel: ReturnType<typeof selectServer> | undefined
    try {
      sel = host === undefined ? undefined : selectServer(vhosts, host)
    } catch (err) {
      if (!(err instanceof RegexMatchFailed)) throw err
      // nginx gives up on the request while reading its head: no answer, no access log line.
      logger.error(`${err.message} while reading client request headers, client: ${(req.viaProxy ?? req).remoteAddress}`)
      res.destroy()
      return
    }
    const server = sel === undefined ? vhosts.defaultServer : sel.server
    const target = parseTarget(raw, server.mergeSlashes)
    const st = new RequestState(req, res, server, host ?? '', target?.uri ?? req.target, target?.args ?? '')
    keepAliveLimits(st, false)
    res.pacing = () => pacingOf(st)
    let conn = connectionIds.get(req.socket)
    if (conn === undefined) {
      conn = ++connections
      connectionIds.set(req.socket, conn)
    }
    const ids = { conn, req: ++requests }
    st.alert = (message) => logger.error(`${message}, client: ${st.remoteAddr}, request: "${req.method} ${req.target}"`, ids)
    st.logError = (message) => logger.error(message, ids)
    st.runSubrequest = (sub) =>
      handle(sub, deps).catch((err: Error) => {
        if (err instanceof RegexMatchFailed) st.alert(err.message)
        else logger.error(`subrequest "${sub.uri}": ${err.message}`, ids)
        if (!sub.res.headersSent) sendBuiltin(sub, 500)
        else sub.res.destroy()
      })
    if (sel?.captures) captured(st, sel.captures)
    realIpPhase(st)
    const startedAt = performance.now()
    res.onFinish = () => {
      stub.requestSeconds.observe((performance.now() - startedAt) / 1000)
      logs.write(bodyTimedOut(st) ? timedOut(st) : st, st.conf.accessLogs)
    }
    // A body that stopped arriving (client_body_timeout) ends the request with no answer;
    // nginx logs it as a 408 with nothing sent, whatever the handler was about to answer.
    if (req.hasBody) {
      res.once('close', () => {
        if (!res.finished && bodyTimedOut(st)) logs.write(timedOut(st), st.conf.accessLogs)
      })
    }
    if (host === undefined || target === undefined || badRequest(req)) {
      sendBuiltin(st, 400)
      return
    }
    if (req.method === 'TRACE' || req.method === 'CONNECT') {
      // ngx_http_process_request_header refuses both with 405 and ends the connection.
      req.keepAlive = false
      sendBuiltin(st, 405)
      return
    }
    handle(st, deps).catch((err: Error) => {
      // A location, if or rewrite regex past its limits: nginx's 500 (NGX_ERROR from the phase).
      if (err instanceof RegexMatchFailed) st.alert(err.message)
      else logger.error(`${req.method} ${req.target}: ${err.message}`, ids)
      if (!res.headersSent) sendBuiltin(st, 500)
      else res.destroy()
    })
  }

  /**
   * nginx writes an access-log line for a request it refused while reading it, or whose head
   * client_header_timeout cut short, with what it read; a connection that sent nothing leaves none.
   */
  const logRefused = (err: Http1ParseError, peer: PeerAddresses, head: Buffer | undefined, vhosts: VirtualHosts) => {
    if (head === undefined || head.length === 0 || err.kind === 'proxy-protocol') return
    const answer = parseErrorResponse(err, vhosts.defaultServer.conf.serverTokens) ?? ''
    const headEnd = answer === '' ? 0 : answer.indexOf('\r\n\r\n') + 4
    // 494 (fields too large) goes out and is logged as 400, as nginx's err_status; a head cut
    // short by client_header_timeout is logged as 408 with what had come.
    const status = err.kind === 'headers-too-large' ? 400 : err.kind === 'request-line-too-long' ? 414 : err.status
    const r = new RefusedRequest(head, peer, status, { bytes: answer.length, body: answer.length - headEnd }, vhosts)
    logs.write(r, r.server.conf.accessLogs)
  }

  let closing: Promise<void> | undefined
  let untrack: (() => void) | undefined
  const self: StaticServer = {
    async listen() {
      // Every address is bound (or kept from the server this one replaces) before any is
      // routed here: a bind that fails changes nothing.
      const bound = await sockets.bind(listeners.map((l) => l.address))
      untrack ??= stub.track(limit)
      listeners.forEach((l, i) => {
        const accept = (socket: Socket) => {
          stub.accepted++
          stub.handled++
          l.http.accept(socket)
        }
        sockets.route(l.address, self, accept, onRefused)
        logger.info(`listening on ${formatAddress(bound[i] as HostPort)}`)
      })
      return bound
    },
    close({ drainTimeoutMs = 10_000 } = {}) {
      closing ??= (async () => {
        // Only the sockets not handed to a newer server are closed (the addresses a reload dropped).
        sockets.release(self)
        await Promise.all(listeners.map((l) => l.http.close({ drainTimeoutMs })))
        await Promise.all([...upstreams.values()].map((u) => u.close()))
        for (const c of caches.values()) c.close()
        await logs.close()
        untrack?.()
      })()
      return closing
    },
    reopenLogs() {
      logs.reopen()
    },
  }
  return self
}

function bodyTimedOut(st: RequestState): boolean {
  const e = st.req.hasBody ? (st.req.bodyIfStarted?.errored as { code?: string } | null | undefined) : undefined
  return e?.code === 'EDGE_ERR_HTTP1_BODY_TIMEOUT'
}

/** The request as logged when client_body_timeout ended it: 408, nothing sent. */
function timedOut(st: RequestState): VariableSource {
  return {
    get: (name) => (name === 'status' ? '408' : name === 'bytes_sent' || name === 'body_bytes_sent' ? '0' : st.get(name)),
  }
}

/** What nginx sends for a request it cannot read: its page, then it closes. */
function parseErrorResponse(err: Http1ParseError, tokens: boolean): string | undefined {
  let status: number
  switch (err.kind) {
    case 'header-timeout':
    case 'body-timeout':
    case 'proxy-protocol':
      // nginx closes without a word on client_header_timeout, client_body_timeout (it
      // terminates the request: ngx_http_finalize_request with 408) and a bad PROXY header.
      return undefined
    case 'request-line-too-long':
      status = 414
      break
    case 'headers-too-large':
      status = 494
      break
    default:
      status = err.status
  }
  const body = errorPageBody(status, tokens)
  const wire = status === 494 ? 400 : status
  return `HTTP/1.1 ${wire} ${statusLineReason(wire)}\r\nServer: ${SERVER}\r\nDate: ${httpDateNow()}\r\nContent-Type: text/html\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.toString('latin1')}`
}
