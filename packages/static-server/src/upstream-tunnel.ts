import type { ProxyResult } from './proxy.js'
import type { UpstreamRequest } from './proxy-request.js'
import type { RequestState } from './request-state.js'
import type { Upstream } from './upstream.js'

/**
 * An Upgrade (websocket) through the chosen peer, as nginx does when the config sets
 * `Upgrade` with proxy_http_version 1.1: the request head goes out as built, then bytes flow
 * both ways until either side ends.
 */
export async function tunnel(st: RequestState, up: Upstream, ureq: UpstreamRequest): Promise<ProxyResult> {
  const peer = up.pick(new Set())
  if (!peer) return 502
  st.upstreamTries.push([{ addr: peer.address, status: '101', start: Date.now() }])
  let lease: Awaited<ReturnType<Upstream['connect']>>
  try {
    lease = await up.connect(peer, st.conf.proxyConnectTimeoutMs)
  } catch {
    up.failed(peer)
    return 502
  }
  const conn = lease.socket
  const { socket, rest } = st.res.hijack()
  conn.on('error', () => socket.destroy())
  socket.on('error', () => conn.destroy())
  conn.write(ureq.head)
  if (rest.length > 0) conn.write(rest)
  socket.pipe(conn)
  conn.pipe(socket)
  // Either side finishing ends the tunnel, as nginx finalizes an upgraded connection: our
  // client sockets are half-open capable, so without this a FIN would leave both ends open.
  socket.on('end', () => conn.end(() => conn.destroy()))
  conn.on('end', () => socket.end(() => socket.destroy()))
  conn.on('close', () => socket.destroy())
  socket.on('close', () => conn.destroy())
  return undefined
}
