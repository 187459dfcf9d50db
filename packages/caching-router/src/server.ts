import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import {
  type AccessLog,
  clfDate,
  formatAddress,
  type HostPort,
  type Logger,
  StartupError,
  stripHopByHop,
} from '@edgestack/common'
import { Pool } from 'undici'

export interface RouterModel {
  listen: HostPort
  /** nginx in the article: static files. */
  staticBackend: HostPort
  /** node in the article: the app, websockets and /socket.io/. */
  appBackend: HostPort
}

export interface CachingRouter {
  listen(): Promise<HostPort>
  close(opts?: { drainTimeoutMs?: number }): Promise<void>
}

// The article's vcl_recv, hard-wired until the VCL compiler drives routing.
const STATIC_URL = /\.(js|css|img)$/
const SOCKET_IO_URL = /^\/socket\.io\//
const WEBSOCKET = /websocket/i

/**
 * varnishd's role in the article: route each request to nginx or node, and pipe websockets
 * and `/socket.io/` to node as raw bytes after the request head.
 */
export function createCachingRouter(model: RouterModel, logger: Logger, access: AccessLog): CachingRouter {
  const pools = {
    static: new Pool(`http://${formatAddress(model.staticBackend)}`, { connections: 128, pipelining: 1 }),
    app: new Pool(`http://${formatAddress(model.appBackend)}`, { connections: 128, pipelining: 1 }),
  }
  const sockets = new Set<net.Socket>()
  let xid = 1000

  const server = http.createServer({ keepAliveTimeout: 5000, requestTimeout: 0 }, (req, res) => {
    const id = ++xid
    const url = req.url ?? '/'
    const backend = STATIC_URL.test(pathOf(url)) ? 'static' : 'app'
    const client = req.socket.remoteAddress ?? '-'
    const headers = forwardHeaders(req)
    let bytes = 0
    res.on('finish', () => access.write(ncsaLine(req, client, res.statusCode, bytes)))
    pools[backend]
      .request({
        method: req.method as string,
        path: url,
        headers,
        body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req,
      })
      .then(
        (up) => {
          const out: string[] = []
          for (const [name, value] of Object.entries(up.headers)) {
            if (value === undefined || isHopByHop(name)) continue
            for (const v of Array.isArray(value) ? value : [value]) out.push(name, v)
          }
          out.push('X-Varnish', String(id), 'Via', '1.1 caching-router')
          res.writeHead(up.statusCode, out)
          up.body.on('data', (c: Buffer) => {
            bytes += c.length
          })
          up.body.pipe(res)
          up.body.on('error', () => res.destroy())
          res.on('close', () => up.body.destroy())
        },
        (err: Error) => {
          logger.warn(`backend ${backend} fetch failed: ${err.message}`, { xid: id })
          synthetic(res, 503, 'Backend fetch failed', id)
        },
      )
  })

  server.on('upgrade', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const url = req.url ?? '/'
    if (!WEBSOCKET.test(String(req.headers.upgrade)) && !SOCKET_IO_URL.test(url)) {
      client.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    pipe(req, client, head)
  })

  /** varnish's `return (pipe)`: the request head goes to the app, then bytes flow both ways untouched. */
  const pipe = (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const peer = client.remoteAddress ?? '-'
    const upstream = net.connect(model.appBackend.port, model.appBackend.host)
    const lines = [`${req.method} ${req.url} HTTP/1.1`]
    const raw = req.rawHeaders
    for (let i = 0; i < raw.length; i += 2) {
      if ((raw[i] as string).toLowerCase() !== 'x-forwarded-for') lines.push(`${raw[i]}: ${raw[i + 1]}`)
    }
    lines.push(`X-Forwarded-For: ${forwardedFor(req)}`)
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`)
    if (head.length > 0) upstream.write(head)
    client.pipe(upstream)
    upstream.pipe(client)
    sockets.add(client)
    upstream.on('error', (err) => {
      logger.warn(`pipe to app failed: ${err.message}`)
      client.destroy()
    })
    client.on('error', () => upstream.destroy())
    client.on('close', () => {
      sockets.delete(client)
      upstream.destroy()
      access.write(ncsaLine(req, peer, 101, 0))
    })
    upstream.on('close', () => client.destroy())
  }

  server.on('connection', (s: net.Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request'
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
    else socket.destroy()
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
      logger.info(
        `listening on ${formatAddress(bound)}; static -> ${formatAddress(model.staticBackend)}, app -> ${formatAddress(
          model.appBackend,
        )}`,
      )
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
        await Promise.all([pools.static.close(), pools.app.close()])
      })()
      return closing
    },
  }
}

function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

function forwardedFor(req: http.IncomingMessage): string {
  const prior = req.headers['x-forwarded-for']
  const client = req.socket.remoteAddress ?? ''
  return prior ? `${prior}, ${client}` : client
}

function forwardHeaders(req: http.IncomingMessage): string[] {
  const out = stripHopByHop(req.rawHeaders, req.headers.connection)
  const kept: string[] = []
  for (let i = 0; i < out.length; i += 2) {
    const name = (out[i] as string).toLowerCase()
    // Node answers Expect itself; X-Forwarded-For is rebuilt below.
    if (name !== 'expect' && name !== 'x-forwarded-for') kept.push(out[i] as string, out[i + 1] as string)
  }
  kept.push('X-Forwarded-For', forwardedFor(req))
  return kept
}

const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection'])
function isHopByHop(name: string): boolean {
  return RESPONSE_HOP_BY_HOP.has(name)
}

/** varnish's builtin vcl_synth page. */
function synthetic(res: http.ServerResponse, status: number, reason: string, xid: number): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const body = `<!DOCTYPE html>
<html>
  <head>
    <title>${status} ${reason}</title>
  </head>
  <body>
    <h1>Error ${status} ${reason}</h1>
    <p>${reason}</p>
    <h3>Guru Meditation:</h3>
    <p>XID: ${xid}</p>
    <hr>
    <p>Varnish cache server</p>
  </body>
</html>
`
  res.writeHead(status, reason, {
    'content-type': 'text/html; charset=utf-8',
    'retry-after': '5',
    'x-varnish': String(xid),
    'content-length': Buffer.byteLength(body),
  })
  res.end(body)
}

/** varnishncsa's default format: `%h %l %u %t "%r" %s %b "%{Referer}i" "%{User-agent}i"`. */
function ncsaLine(req: http.IncomingMessage, client: string, status: number, bytes: number): string {
  const host = req.headers.host ? `http://${req.headers.host}` : ''
  return `${client} - - [${clfDate(new Date())}] "${req.method} ${host}${req.url} HTTP/${
    req.httpVersion
  }" ${status} ${bytes || '-'} "${req.headers.referer ?? '-'}" "${req.headers['user-agent'] ?? '-'}"`
}
