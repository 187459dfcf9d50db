import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { join, sep } from 'node:path'
import {
  type AccessLog,
  clfDate,
  formatAddress,
  type HostPort,
  type Logger,
  StartupError,
  stripHopByHop,
} from '@edgestack/common'
import mime from 'mime-types'
import { Pool } from 'undici'

export interface StaticServerModel {
  listen: HostPort
  root: string
  index: string[]
  /** `location = /` and `@proxy` in the article's nginx.conf. */
  proxy: HostPort
}

export interface StaticServer {
  listen(): Promise<HostPort>
  close(opts?: { drainTimeoutMs?: number }): Promise<void>
}

/**
 * nginx's role in the article: `location = /` proxied to node, and
 * `location / { try_files $uri $uri/ @proxy; }` with `@proxy` proxied to node.
 */
export function createStaticServer(model: StaticServerModel, logger: Logger, access: AccessLog): StaticServer {
  const upstream = new Pool(`http://${formatAddress(model.proxy)}`, { connections: 64 })
  const sockets = new Set<Socket>()

  const server = http.createServer({ keepAliveTimeout: 75_000 }, (req, res) => {
    const client = req.socket.remoteAddress ?? '-'
    let bytes = 0
    const write = res.write
    // $body_bytes_sent: count what actually went out, whichever path produced it.
    res.write = function (this: http.ServerResponse, chunk: unknown, ...rest: unknown[]) {
      if (chunk) bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Buffer).length
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest)
    } as typeof res.write
    res.on('finish', () => access.write(combinedLine(req, res, client, bytes)))
    handle(req, res).catch((err: Error) => {
      logger.error(`request failed: ${err.message}`)
      if (!res.headersSent) respond(res, 500, 'Internal Server Error')
      else res.destroy()
    })
  })

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = req.url ?? '/'
    const rawPath = url.split('?')[0] as string
    if (rawPath === '/') return proxy(req, res)
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      // nginx's static module answers 405 for other methods on files; try_files falls to @proxy otherwise.
      return proxy(req, res)
    }
    let path: string
    try {
      path = decodeURIComponent(rawPath)
    } catch {
      return respond(res, 400, 'Bad Request')
    }
    if (path.includes('\0') || path.split('/').includes('..') || path.includes('\\')) return respond(res, 400, 'Bad Request')
    const file = join(model.root, path)
    if (file !== model.root && !file.startsWith(model.root + sep)) return respond(res, 400, 'Bad Request')
    const st = await stat(file).catch(() => undefined)
    if (st?.isFile()) return sendFile(req, res, file, st.size, st.mtime)
    if (st?.isDirectory()) {
      if (!path.endsWith('/')) {
        res.writeHead(301, { location: `${path}/`, 'content-length': 0 })
        return res.end()
      }
      for (const name of model.index) {
        const idx = join(file, name)
        const ist = await stat(idx).catch(() => undefined)
        if (ist?.isFile()) return sendFile(req, res, idx, ist.size, ist.mtime)
      }
    }
    return proxy(req, res)
  }

  const sendFile = (req: http.IncomingMessage, res: http.ServerResponse, file: string, size: number, mtime: Date) => {
    res.writeHead(200, {
      'content-type': mime.contentType(file.slice(file.lastIndexOf('/') + 1)) || 'application/octet-stream',
      'content-length': size,
      'last-modified': mtime.toUTCString(),
      etag: `"${Math.floor(mtime.getTime() / 1000).toString(16)}-${size.toString(16)}"`,
      'accept-ranges': 'bytes',
    })
    if (req.method === 'HEAD') return res.end()
    const stream = createReadStream(file)
    stream.on('error', () => res.destroy())
    stream.pipe(res)
  }

  const proxy = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const headers = stripHopByHop(req.rawHeaders, req.headers.connection).filter(
      (_, i, a) => i % 2 !== 0 || (a[i] as string).toLowerCase() !== 'expect',
    )
    try {
      const up = await upstream.request({
        method: req.method as string,
        path: req.url ?? '/',
        headers,
        body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req,
      })
      const out: string[] = []
      for (const [name, value] of Object.entries(up.headers)) {
        if (value === undefined || ['connection', 'keep-alive', 'transfer-encoding'].includes(name)) continue
        for (const v of Array.isArray(value) ? value : [value]) out.push(name, v)
      }
      res.writeHead(up.statusCode, out)
      up.body.on('error', () => res.destroy())
      up.body.pipe(res)
    } catch (err) {
      logger.warn(`upstream ${formatAddress(model.proxy)} failed: ${(err as Error).message}`)
      respond(res, 502, 'Bad Gateway')
    }
  }

  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })

  let closing: Promise<void> | undefined
  return {
    async listen() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) =>
          reject(new StartupError(`cannot listen on ${formatAddress(model.listen)}: ${err.message}`)),
        )
        server.listen(model.listen.port, model.listen.host, () => resolve())
      })
      const a = server.address() as AddressInfo
      const bound = { host: a.address, port: a.port }
      logger.info(`listening on ${formatAddress(bound)}, root ${model.root}, fallback ${formatAddress(model.proxy)}`)
      return bound
    },
    close({ drainTimeoutMs = 10_000 } = {}) {
      closing ??= (async () => {
        const done = new Promise<void>((resolve) => server.close(() => resolve()))
        server.closeIdleConnections()
        const timer = setTimeout(() => {
          for (const s of sockets) s.destroy()
        }, drainTimeoutMs)
        timer.unref()
        await done
        clearTimeout(timer)
        await upstream.close()
      })()
      return closing
    },
  }
}


/** nginx's built-in error page shape. */
function respond(res: http.ServerResponse, status: number, reason: string): void {
  const body = `<html>\r\n<head><title>${status} ${reason}</title></head>\r\n<body>\r\n<center><h1>${status} ${reason}</h1></center>\r\n<hr><center>static-server</center>\r\n</body>\r\n</html>\r\n`
  res.writeHead(status, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(body) })
  res.write(body)
  res.end()
}

/** nginx's `combined` log format. */
function combinedLine(req: http.IncomingMessage, res: http.ServerResponse, client: string, bytes: number): string {
  return `${client} - - [${clfDate(new Date())}] "${req.method} ${req.url} HTTP/${
    req.httpVersion
  }" ${res.statusCode} ${bytes} "${req.headers.referer ?? '-'}" "${req.headers['user-agent'] ?? '-'}"`
}
