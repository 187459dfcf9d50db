import type net from 'node:net'
import tls from 'node:tls'
import { formatAddress, type HostPort, type Logger, StartupError } from '@edgestack/common'
import { BackendPool } from './backends.js'
import type { ServiceModel, TerminatorModel } from './config/model.js'
import { handleConnection } from './connection.js'
import { TerminatorStats } from './stats.js'
import { type Prepared, type PreparedListener, type PrepareOptions, prepare } from './prepare.js'
import { SessionCache } from './session-cache.js'
import { pickByServerName } from './sni.js'

export interface TlsTerminator {
  /** Reads certificates, binds every service's `accept`; resolves with the bound addresses. */
  listen(): Promise<HostPort[]>
  /**
   * SIGHUP: applies a new model to new connections. Open connections keep what they started
   * with. When anything in the new model fails (a file, a context, a bind), nothing changes.
   */
  reload(model: TerminatorModel): Promise<void>
  /** Stops accepting; open connections may finish for `drainTimeoutMs`, then are cut. */
  close(opts?: { drainTimeoutMs?: number }): Promise<void>
}

interface Listener {
  server: tls.Server
  current: PreparedListener
  address: HostPort
  /** Absent when the primary service says `sessionResume = no`. */
  sessions: SessionCache | undefined
}

/** Connection-limit drops are logged at most this often, with a count, so a flood cannot flood the log. */
const DROP_LOG_INTERVAL_MS = 1000

/**
 * stunnel's job: one TLS listener per service with `accept`, secondary services chosen by SNI,
 * plain TCP to the service's backends.
 */
export function createTlsTerminator(
  model: TerminatorModel,
  logger: Logger,
  opts: PrepareOptions & { stats?: TerminatorStats } = {},
): TlsTerminator {
  const stats = opts.stats ?? new TerminatorStats()
  const listeners = new Map<string, Listener>()
  const pools = new WeakMap<ServiceModel, BackendPool>()
  const open = new Set<{ destroy(reason: string): void }>()
  let nextId = 1
  let closing: Promise<void> | undefined

  const poolFor = (s: ServiceModel) => {
    let p = pools.get(s)
    if (!p) {
      p = new BackendPool(s)
      pools.set(s, p)
    }
    return p
  }

  const announce = (p: Prepared) => {
    for (const line of p.info) logger.info(line)
    for (const line of p.warnings) logger.warn(line)
  }

  // A listener is identified by its address, so a reload may rename its service; port 0 is
  // never the same socket twice, so there the service name tells them apart.
  const keyOf = (l: PreparedListener) => {
    const accept = l.model.service.accept as HostPort
    return accept.port === 0 ? `${l.model.service.name}@${formatAddress(accept)}` : formatAddress(accept)
  }

  const startListener = async (l: PreparedListener): Promise<Listener> => {
    const s = l.model.service
    const server = tls.createServer({
      ...l.primary.contextOptions,
      // Half-open only once the handshake is done (set in secureConnection): a client that
      // sends FIN mid-handshake must free its slot at once, as stunnel's SSL_accept does on
      // EOF, not hold it until TIMEOUTbusy (a cheap way to keep the listener full).
      allowHalfOpen: false,
      // TCP_NODELAY from accept on, so Nagle never holds back a handshake flight.
      noDelay: true,
      handshakeTimeout: s.timeouts.busyMs,
      requestCert: l.requestCert,
      rejectUnauthorized: l.rejectUnauthorized,
      SNICallback: (name, cb) => cb(null, pickByServerName(entry.current.primary, entry.current.virtualHosts, name).context),
      // ALPN (hitch's alpn-protos): the list is read per handshake, so a reload changes it;
      // turning ALPN on or off takes a restart, since Node fixes that when the server is made.
      ...(s.alpnProtocols ? { ALPNCallback: ({ protocols }: { protocols: string[] }) => selectAlpn(entry.current.primary.model.alpnProtocols, protocols) } : {}),
    })
    // Accept time of each TCP connection, for the handshake-duration histogram (see `_parent` below).
    const acceptedAt = new WeakMap<net.Socket, number>()
    const entry: Listener = { server, current: l, address: s.accept as HostPort, sessions: sessionCacheFor(s, undefined) }
    // OpenSSL consults the cache of the context the connection started in, the primary's,
    // whichever SNI service it ends up in (stunnel's too); OpenSSL then refuses a session made
    // by another service (its session ID context differs, see prepare.ts).
    server.on('newSession', (id: Buffer, data: Buffer, done: () => void) => {
      entry.sessions?.store(id, data)
      done()
    })
    server.on('resumeSession', (id: Buffer, done: (err: Error | null, data: Buffer | null) => void) => {
      done(null, entry.sessions?.fetch(id) ?? null)
    })
    server.maxConnections = model.maxConnections
    let dropped = 0
    let dropTimer: NodeJS.Timeout | undefined
    server.on('drop', () => {
      dropped++
      if (dropTimer) return
      logger.warn(`[${s.name}] connection limit ${server.maxConnections} reached: dropping new connections`)
      dropTimer = setTimeout(() => {
        dropTimer = undefined
        if (dropped > 1) logger.warn(`[${s.name}] connection limit: ${dropped} connections dropped`)
        dropped = 0
      }, DROP_LOG_INTERVAL_MS)
      dropTimer.unref()
    })
    server.on('secureConnection', (client: tls.TLSSocket) => {
      client.allowHalfOpen = true
      const accepted = acceptedAt.get((client as tls.TLSSocket & { _parent?: net.Socket })._parent as net.Socket)
      if (accepted !== undefined) stats.handshakeSeconds.observe((performance.now() - accepted) / 1000)
      stats.handshake(client.getProtocol() ?? 'unknown', client.getCipher()?.name ?? 'unknown')
      const l = entry.current
      const service = pickByServerName(l.primary, l.virtualHosts, client.servername)
      const handle = handleConnection(client, {
        id: nextId++,
        service,
        pool: poolFor(service.model),
        logger,
        onClosed: (bytesIn, bytesOut, seconds) => {
          stats.connectionSeconds.observe(seconds)
          open.delete(handle)
          stats.bytesReceived += bytesIn
          stats.bytesSent += bytesOut
        },
        onBackendFailed: () => stats.backendConnectFailed(service.model.name),
      })
      open.add(handle)
    })
    // The peer's address is read at accept: by the time a handshake fails (a timeout after the
    // client left) the socket can no longer say who it was.
    const peers = new WeakMap<net.Socket, string>()
    server.on('connection', (raw: net.Socket) => {
      peers.set(raw, `${raw.remoteAddress}:${raw.remotePort}`)
      acceptedAt.set(raw, performance.now())
      stats.connections++
      stats.active++
      raw.once('close', () => stats.active--)
    })
    server.on('tlsClientError', (err, socket) => {
      // Node only reports a handshake timeout here; closing the socket is up to us.
      socket.destroy()
      stats.handshakeFailed((err as NodeJS.ErrnoException).code ?? 'other')
      // `_parent` is the accepted TCP socket a server-side TLSSocket wraps (Node internals,
      // stable since v0.x); without it, fall back to what the socket still knows.
      const raw = (socket as tls.TLSSocket & { _parent?: net.Socket })._parent
      const peer = (raw && peers.get(raw)) ?? `${socket.remoteAddress}:${socket.remotePort}`
      logger.debug(`[${s.name}] TLS handshake failed from ${peer}: ${err.message}`)
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(new StartupError(`[${s.name}] cannot listen on ${formatAddress(entry.address)}: ${err.message}`)),
      )
      server.listen(entry.address.port, entry.address.host, () => resolve())
    })
    server.on('error', (err) => logger.error(`[${s.name}] listener error: ${err.message}`))
    const bound = server.address() as net.AddressInfo
    entry.address = { host: bound.address, port: bound.port }
    logger.info(
      `listening on ${formatAddress(entry.address)}: service ${s.name} forwarding to ${s.connect.map(formatAddress).join(', ')}`,
    )
    return entry
  }

  const stopListener = (l: Listener) => {
    l.server.close()
  }

  return {
    async listen() {
      const prepared = await prepare(model, opts)
      announce(prepared)
      const started: Listener[] = []
      try {
        for (const l of prepared.listeners) started.push(await startListener(l))
      } catch (err) {
        started.forEach(stopListener)
        throw err
      }
      for (const [i, l] of started.entries()) listeners.set(keyOf(prepared.listeners[i] as PreparedListener), l)
      return started.map((l) => l.address)
    },

    async reload(next) {
      if (closing) throw new Error('shutting down')
      const prepared = await prepare(next, opts)
      // A listener is kept when the same service accepts on the same address; its new
      // certificates and policies apply from the next handshake on.
      const keep = new Map<Listener, PreparedListener>()
      const fresh: PreparedListener[] = []
      for (const l of prepared.listeners) {
        const existing = listeners.get(keyOf(l))
        if (existing) keep.set(existing, l)
        else fresh.push(l)
      }
      const started: Listener[] = []
      try {
        for (const l of fresh) started.push(await startListener(l))
      } catch (err) {
        started.forEach(stopListener)
        throw err
      }
      announce(prepared)
      const nextListeners = new Map<string, Listener>()
      for (const [entry, l] of keep) {
        entry.server.setSecureContext(l.primary.contextOptions)
        // Node's tlsConnectionListener reads these off the server for every new connection.
        const opts = entry.server as unknown as { requestCert: boolean; rejectUnauthorized: boolean }
        opts.requestCert = l.requestCert
        opts.rejectUnauthorized = l.rejectUnauthorized
        entry.current = l
        entry.sessions = sessionCacheFor(l.model.service, entry.sessions)
        nextListeners.set(keyOf(l), entry)
      }
      for (const [i, entry] of started.entries()) nextListeners.set(keyOf(fresh[i] as PreparedListener), entry)
      for (const [key, entry] of listeners) {
        if (!nextListeners.has(key)) {
          logger.info(`[${entry.current.model.service.name}] removed: no longer listening on ${formatAddress(entry.address)}`)
          stopListener(entry)
        }
      }
      listeners.clear()
      for (const [k, v] of nextListeners) listeners.set(k, v)
    },

    close({ drainTimeoutMs = model.drainTimeoutMs } = {}) {
      closing ??= (async () => {
        const closed = [...listeners.values()].map(
          (l) => new Promise<void>((resolve) => l.server.close(() => resolve())),
        )
        const timer = setTimeout(() => {
          for (const c of open) c.destroy(`cut at shutdown after ${drainTimeoutMs / 1000} s`)
        }, drainTimeoutMs)
        timer.unref()
        await Promise.all(closed)
        clearTimeout(timer)
      })()
      return closing
    },
  }
}

/**
 * hitch's choice (OpenSSL's SSL_select_next_proto with the server's list first): the first of
 * ours the client offers. None in common: undefined, and Node ends the handshake with
 * no_application_protocol (hitch completes it, then closes without a byte to the backend).
 */
export function selectAlpn(ours: readonly string[] | undefined, offered: readonly string[]): string | undefined {
  return ours?.find((p) => offered.includes(p))
}

/** stunnel's `sessionResume = no` turns the cache off (SSL_SESS_CACHE_OFF); a reload keeps its sessions. */
function sessionCacheFor(s: ServiceModel, existing: SessionCache | undefined): SessionCache | undefined {
  if (!s.sessionResume) return undefined
  if (!existing) return new SessionCache(s.sessionCacheSize, s.sessionCacheTimeoutS)
  existing.resize(s.sessionCacheSize, s.sessionCacheTimeoutS)
  return existing
}
