import net from 'node:net'
import type { Http1Response, Logger } from '@edgestack/common'
import type { VclResolvedBackend } from './vcl/index.js'

/**
 * varnish's `return (pipe)`: the request head goes to the backend, then bytes flow both ways
 * untouched until either side closes or nothing moves for `pipe_timeout`; both halves are
 * closed together. `Connection: close` is added unless this is an Upgrade, as varnishd does,
 * so the backend never parses a second request we did not see. A connection of its own, as
 * varnishd's pipe takes one from no pool: the backend's keep-alive pool is never involved.
 */
export function pipeTo(
  backend: VclResolvedBackend,
  res: Http1Response,
  head: { method: string; url: string; headers: string[]; upgrade: boolean },
  opts: { timeoutMs: number; logger: Logger; xid: number; done(bytes: number): void },
): void {
  const { socket: client, rest } = res.hijack()
  const upstream = backend.path !== undefined ? net.connect(backend.path) : net.connect(backend.port, backend.host)
  let text = `${head.method} ${head.url} HTTP/1.1\r\n`
  for (let i = 0; i < head.headers.length; i += 2) {
    const name = head.headers[i] as string
    if (!head.upgrade && name.toLowerCase() === 'connection') continue
    text += `${name}: ${head.headers[i + 1]}\r\n`
  }
  if (!head.upgrade) text += 'Connection: close\r\n'
  upstream.write(`${text}\r\n`, 'latin1')
  if (rest.length > 0) upstream.write(rest)
  let bytes = 0
  upstream.on('data', (c: Buffer) => {
    bytes += c.length
  })
  client.pipe(upstream)
  upstream.pipe(client)
  const idle = () => {
    client.destroy()
    upstream.destroy()
  }
  if (opts.timeoutMs > 0) {
    client.setTimeout(opts.timeoutMs, idle)
    upstream.setTimeout(opts.timeoutMs, idle)
  }
  let finished = false
  const finish = () => {
    if (finished) return
    finished = true
    client.destroy()
    upstream.destroy()
    opts.done(bytes)
  }
  upstream.on('error', (err) => {
    opts.logger.warn(`pipe to ${backend.name} failed: ${err.message}`, { xid: opts.xid })
    if (bytes === 0 && client.writable) {
      client.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
    }
  })
  client.on('error', () => finish())
  client.on('close', finish)
  upstream.on('close', () => {
    if (bytes === 0 && client.writable) client.end()
    else finish()
  })
}
