import { readFile } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { formatAddress, type HostPort, type Logger } from '@edgestack/common'
import { Server as SocketServer } from 'socket.io'
import { connectRedis, type RedisLink, redactedUrl } from './redis-adapter.js'

export interface DemoAppModel {
  listen: HostPort
  /** The page served at `/`. */
  indexFile: string
  /**
   * Redis shared by every instance (`redis://host:port`): rooms and broadcasts cross instances
   * through socket.io's Redis adapter. Absent: one instance, socket.io's in-memory adapter.
   */
  redis?: string
  /** This instance's name in logs and in the `welcome` event (host:port by default). */
  instance?: string
}

export interface DemoApp {
  listen(): Promise<HostPort>
  close(opts?: { drainTimeoutMs?: number }): Promise<void>
}

const MAX_MESSAGE = 500

/**
 * The article's node app: the page at `/` and a socket.io endpoint where every message a
 * client sends is shown to every client, with a live count of who is connected.
 */
export function createDemoApp(model: DemoAppModel, logger: Logger): DemoApp {
  let page: Buffer | undefined
  const server = http.createServer((req, res) => {
    const started = Date.now()
    const client = req.socket.remoteAddress
    res.on('finish', () => logger.info(`${client} "${req.method} ${req.url}" ${res.statusCode} ${Date.now() - started}ms`))
    const path = (req.url ?? '/').split('?')[0]
    if ((req.method === 'GET' || req.method === 'HEAD') && (path === '/' || path === '/index.html')) {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'content-length': page?.length ?? 0,
        'cache-control': 'no-cache',
      })
      res.end(req.method === 'HEAD' ? undefined : page)
      return
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end('ok\n')
      return
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
    res.end('not found\n')
  })
  const io = new SocketServer(server, { serveClient: true })
  let redis: RedisLink | undefined
  let nextClient = 1
  // With several instances a name must be unique across them: the page marks its own messages
  // by it.
  const suffix = model.redis && model.instance ? `@${model.instance}` : ''

  // How many are connected to the whole app: every instance's sockets through the adapter, or
  // this instance's alone while Redis is away. One count at a time; a change meanwhile runs it
  // once more afterwards.
  let counting = false
  let countAgain = false
  const announceCount = async (): Promise<void> => {
    if (counting) {
      countAgain = true
      return
    }
    counting = true
    try {
      do {
        countAgain = false
        const n = redis ? await io.fetchSockets().then((s) => s.length, () => io.engine.clientsCount) : io.engine.clientsCount
        io.emit('clients', n)
      } while (countAgain)
    } finally {
      counting = false
    }
  }

  io.on('connection', (socket) => {
    const name = `client-${nextClient++}${suffix}`
    const transport = socket.conn.transport.name
    logger.info(`socket.io connect ${name} via ${transport} from ${socket.handshake.address}`)
    // The page marks its own messages by this name.
    socket.emit('welcome', { name, instance: model.instance })
    void announceCount()
    socket.conn.on('upgrade', () => logger.info(`socket.io ${name} upgraded to ${socket.conn.transport.name}`))
    socket.on('message', (text: unknown) => {
      if (typeof text !== 'string' || text.length === 0) return
      io.emit('message', { from: name, text: text.slice(0, MAX_MESSAGE), at: Date.now() })
    })
    socket.on('ping-rtt', (ack: unknown) => {
      if (typeof ack === 'function') ack()
    })
    socket.on('disconnect', (reason) => {
      logger.info(`socket.io disconnect ${name}: ${reason}`)
      void announceCount()
    })
  })

  let closing: Promise<void> | undefined
  return {
    async listen() {
      page = await readFile(model.indexFile)
      if (model.redis) {
        redis = await connectRedis({ url: model.redis }, logger)
        io.adapter(redis.adapter)
        logger.info(`redis ${redactedUrl(model.redis)} (${redis.version}): socket.io ${redis.mode} adapter, instance ${model.instance ?? '-'}`)
      }
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(model.listen.port, model.listen.host, () => resolve())
      }).catch(async (err: unknown) => {
        // The Redis clients would keep the process alive after a failed start.
        await redis?.close()
        throw err
      })
      const a = server.address() as AddressInfo
      const bound = { host: a.address, port: a.port }
      logger.info(`listening on ${formatAddress(bound)}`)
      return bound
    },
    close({ drainTimeoutMs = 10_000 } = {}) {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), drainTimeoutMs)
        timer.unref()
        // io.close() disconnects every socket.io client and closes the http server.
        io.close(() => {
          clearTimeout(timer)
          void redis?.close().then(resolve)
          if (!redis) resolve()
        })
        server.closeIdleConnections()
      })
      return closing
    },
  }
}
