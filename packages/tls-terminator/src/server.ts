import { readFile } from 'node:fs/promises'
import net from 'node:net'
import tls from 'node:tls'
import { formatAddress, type HostPort, type Logger, StartupError } from '@edgestack/common'

export interface TlsTerminatorModel {
  accept: HostPort
  connect: HostPort
  cert: string
  key: string
  /** A client that has not finished its handshake in this time is dropped. */
  handshakeTimeoutMs: number
}

export interface TlsTerminator {
  listen(): Promise<HostPort>
  close(opts?: { drainTimeoutMs?: number }): Promise<void>
}

/**
 * stunnel's job in the article: TLS in on :443, plain TCP out to varnish, bytes piped both
 * ways with backpressure (stream.pipe pauses the faster side) and half-close honoured.
 */
export function createTlsTerminator(model: TlsTerminatorModel, logger: Logger): TlsTerminator {
  const connections = new Set<net.Socket>()
  let server: tls.Server | undefined
  let closing: Promise<void> | undefined
  let nextId = 1

  const onSecureConnection = (client: tls.TLSSocket) => {
    const id = nextId++
    const started = Date.now()
    const peer = `${client.remoteAddress}:${client.remotePort}`
    // Read now: once the socket is destroyed these are gone.
    const protocol = client.getProtocol() ?? '-'
    const cipher = client.getCipher()?.name ?? '-'
    const backend = net.connect({ host: model.connect.host, port: model.connect.port, allowHalfOpen: true })
    connections.add(client)
    let reason = 'closed'
    let bytesIn = 0
    let bytesOut = 0
    client.on('data', (c: Buffer) => {
      bytesIn += c.length
    })
    backend.on('data', (c: Buffer) => {
      bytesOut += c.length
    })
    client.on('error', (err) => {
      reason = `client error: ${err.message}`
      backend.destroy()
    })
    backend.on('error', (err) => {
      reason = `backend error: ${err.message}`
      client.destroy()
    })
    client.pipe(backend)
    backend.pipe(client)
    let open = 2
    const onClose = () => {
      if (--open > 0) return
      connections.delete(client)
      logger.info(
        `connection ${id} closed: ${peer} -> ${formatAddress(model.connect)} ${protocol} ${cipher} in=${bytesIn} out=${bytesOut} ms=${Date.now() - started} ${reason}`,
      )
    }
    // Both sides are closed together: when one is gone for good, the other follows.
    client.on('close', () => {
      backend.destroy()
      onClose()
    })
    backend.on('close', () => {
      client.destroySoon()
      onClose()
    })
  }

  return {
    async listen() {
      const [cert, key] = await Promise.all([readPem(model.cert, 'certificate'), readPem(model.key, 'key')])
      try {
        // Fails here, before any port is bound, when the key does not match the certificate.
        tls.createSecureContext({ cert, key })
      } catch (err) {
        const why = (err as Error).message
        throw new StartupError(
          /key values mismatch/.test(why)
            ? `key ${model.key} does not match certificate ${model.cert}`
            : `cannot use certificate ${model.cert} with key ${model.key}: ${why}`,
        )
      }
      server = tls.createServer({
        cert,
        key,
        minVersion: 'TLSv1.2',
        allowHalfOpen: true,
        handshakeTimeout: model.handshakeTimeoutMs,
      })
      server.on('secureConnection', onSecureConnection)
      server.on('tlsClientError', (err, socket) => {
        logger.debug(`TLS handshake failed from ${socket.remoteAddress}: ${err.message}`)
      })
      const s = server
      await new Promise<void>((resolve, reject) => {
        s.once('error', (err) => reject(new StartupError(`cannot listen on ${formatAddress(model.accept)}: ${err.message}`)))
        s.listen(model.accept.port, model.accept.host, () => resolve())
      })
      const address = s.address() as net.AddressInfo
      const bound = { host: address.address, port: address.port }
      logger.info(`listening on ${formatAddress(bound)}, forwarding to ${formatAddress(model.connect)}`)
      return bound
    },
    close({ drainTimeoutMs = 10_000 } = {}) {
      closing ??= new Promise<void>((resolve) => {
        if (!server) return resolve()
        server.close(() => resolve())
        const timer = setTimeout(() => {
          for (const c of connections) c.destroy()
        }, drainTimeoutMs)
        timer.unref()
        server.once('close', () => clearTimeout(timer))
      })
      return closing
    },
  }
}

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file)
  } catch (err) {
    throw new StartupError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}
