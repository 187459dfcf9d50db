import type net from 'node:net'
import type tls from 'node:tls'
import { encodeProxyV1, escapeLogValue, formatAddress, type Logger } from '@edgestack/common'
import type { BackendPool } from './backends.js'
import { ClientForwarder } from './client-forwarder.js'
import type { PreparedService } from './prepare.js'
import { encodeHitchProxyV2, tlsFacts } from './proxy-v2-header.js'

export interface ConnectionEnv {
  id: number
  service: PreparedService
  pool: BackendPool
  logger: Logger
  /** Called once, when both sides are gone, with the bytes passed each way (backend's counters). */
  /** `seconds`: from the handshake's end to the close, for the connection-duration histogram. */
  onClosed(bytesIn: number, bytesOut: number, seconds: number): void
  /** A backend address could not be connected (one call per attempt). */
  onBackendFailed?(): void
}

/**
 * One client: check its certificate if the service wants one, connect a backend, then pass
 * bytes both ways with backpressure: client to backend with stream.pipe, backend to client
 * through a ClientForwarder (a read buffer shared by all connections instead of an allocation
 * per read). Each side's end is passed on to the other (the client's through pipe, the
 * backend's by closeClient below). Byte counts come from the backend socket's counters when the
 * connection closes.
 */
export function handleConnection(client: tls.TLSSocket, env: ConnectionEnv): { destroy(reason: string): void } {
  const { service } = env
  // The connection's id is a field of its lines (`conn=12`, a key with --log-format json),
  // on a child logger made only when the connection has something to say.
  let connLogger: Logger | undefined
  const log = () => {
    connLogger ??= env.logger.child({ conn: env.id })
    return connLogger
  }
  const model = service.model
  const started = Date.now()
  const startedHr = performance.now()
  // Read now: once the socket is destroyed these are gone.
  const peer = `${unmapped(client.remoteAddress)}:${client.remotePort}`
  const protocol = client.getProtocol() ?? '-'
  const cipher = client.getCipher()?.name ?? '-'
  // The SNI name is the client's bytes: escaped so it cannot end or forge a log line.
  const serverName = client.servername ? escapeLogValue(client.servername) : '-'
  let backend: net.Socket | undefined
  let target = '-'
  let headerBytes = 0
  let reason: string | undefined
  let closeTimer: NodeJS.Timeout | undefined
  let finished = false

  const finish = () => {
    if (finished) return
    finished = true
    if (closeTimer) clearTimeout(closeTimer)
    const bytesIn = backend ? Math.max(0, backend.bytesWritten - headerBytes) : 0
    const bytesOut = backend ? backend.bytesRead : 0
    env.onClosed(bytesIn, bytesOut, (performance.now() - startedHr) / 1000)
    if (model.debug >= 5) {
      log().info(
        `closed: ${peer} -> ${target} ${protocol} ${cipher} service=${model.name} sni=${serverName} in=${bytesIn} out=${bytesOut} ms=${Date.now() - started} ${reason ?? 'closed'}`,
      )
    }
  }
  const destroy = (why: string) => {
    reason ??= why
    client.destroy()
    backend?.destroy()
  }

  client.on('error', (err) => {
    reason ??= `client error: ${err.message}`
    backend?.destroy()
  })
  client.on('close', () => {
    // Whatever the client sent last still reaches the backend; then the backend goes too.
    if (backend && !backend.destroyed) backend.destroySoon()
    if (!backend || backend.destroyed) finish()
  })

  const refusal = checkClientCertificate(client, service)
  if (refusal) {
    destroy(refusal)
    return { destroy }
  }

  // stunnel logs accept and connect at notice/info; here they are debug (7) so that a busy
  // server's log stays one line per connection.
  const verbose = model.debug >= 7
  if (verbose) log().debug(`[${model.name}] accepted ${peer} ${protocol} ${cipher} sni=${serverName}`)
  // hitch's keepalive: SO_KEEPALIVE with TCP_KEEPIDLE on the client socket.
  if (model.keepaliveMs !== undefined) client.setKeepAlive(true, model.keepaliveMs)
  client.setTimeout(model.timeouts.idleMs)
  client.on('timeout', () => destroy(`idle for ${model.timeouts.idleMs / 1000} s (TIMEOUTidle)`))

  const forwarder = new ClientForwarder()
  env.pool.connect(
    () => client.destroyed,
    (t, err) => {
      env.onBackendFailed?.()
      log().warn(`[${model.name}] backend ${formatAddress(t)} failed: ${err.message}`)
    },
    forwarder.onread,
  ).then(
    (b) => {
      backend = b.socket
      target = formatAddress(b.target)
      if (client.destroyed) {
        backend.destroy()
        finish()
        return
      }
      if (verbose) log().debug(`[${model.name}] connected to ${target}`)
      wire(client, backend)
    },
    (err: Error) => {
      reason ??= `backend error: ${err.message}`
      client.destroy()
      if (client.destroyed && !backend) finish()
    },
  )

  function wire(c: tls.TLSSocket, b: net.Socket) {
    b.on('error', (err) => {
      reason ??= `backend error: ${err.message}`
      c.destroy()
    })
    // The backend is done sending: the client gets our close_notify (after everything buffered)
    // and TIMEOUTclose to close its side too, as stunnel waits for the peer's close_notify;
    // 0 closes as soon as the data is flushed (stunnel(8): "set to 0 for buggy MSIE"), which
    // the article's config uses. A client that ended first is not limited: see half-close.
    let closingClient = false
    const closeClient = () => {
      if (closingClient || c.destroyed) return
      closingClient = true
      if (model.timeouts.closeMs === 0) c.destroySoon()
      else {
        c.end()
        closeTimer = setTimeout(() => c.destroy(), model.timeouts.closeMs)
        closeTimer.unref()
      }
    }
    b.on('end', () => {
      reason ??= 'backend closed'
      closeClient()
    })
    c.on('end', () => {
      reason ??= 'client closed'
    })
    b.on('close', () => {
      c.unpipe(b)
      closeClient()
      if (c.destroyed) finish()
      else c.once('close', finish)
    })
    if (model.protocol) {
      // stunnel's protocol = proxy and hitch's write-proxy-v1: the client's address and the
      // address it connected to; hitch's write-proxy-v2 adds what the handshake settled.
      const source = { address: unmapped(c.remoteAddress), port: c.remotePort ?? 0 }
      const destination = { address: unmapped(c.localAddress), port: c.localPort ?? 0 }
      const header =
        model.protocol === 'proxy' ? encodeProxyV1(source, destination) : encodeHitchProxyV2(source, destination, tlsFacts(c), model.proxyTlv)
      headerBytes = header.length
      b.write(header)
    }
    c.pipe(b)
    forwarder.attach(c, b)
  }

  return { destroy }
}

/**
 * stunnel's verifyChain / verifyPeer / requireCert, for listeners where OpenSSL could not be
 * told to refuse during the handshake (SNI services with different policies, or pinning).
 */
function checkClientCertificate(client: tls.TLSSocket, service: PreparedService): string | undefined {
  if (!service.checkClientAfterHandshake) return undefined
  const policy = service.model.clientCerts
  const cert = client.getPeerX509Certificate()
  if (!cert) return policy.requireCert ? 'refused: no client certificate (requireCert)' : undefined
  if (policy.verifyChain && !client.authorized) {
    return `refused: client certificate "${cert.subject.replaceAll('\n', ', ')}" not verified: ${String(client.authorizationError)} (verifyChain)`
  }
  if (service.pinned && !service.pinned.has(cert.fingerprint256)) {
    return `refused: client certificate "${cert.subject.replaceAll('\n', ', ')}" is not in CAfile/CApath (verifyPeer)`
  }
  return undefined
}

/** A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; logs and PROXY want a.b.c.d. */
function unmapped(address: string | undefined): string {
  if (!address) return '-'
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}
