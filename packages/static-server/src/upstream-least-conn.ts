import { type Choice, type Peer, picked, roundRobin, smoothWeighted, usable } from './upstream-peer.js'

/**
 * ngx_http_upstream_get_least_conn_peer: the usable peer with the fewest requests in flight for
 * its weight (conns / weight, compared by cross-multiplying); several such peers share by the
 * smooth weighted round robin, started at the first of them. A lone winner leaves the weights
 * as they were. The backups are tried the same way once no primary is left.
 */
export function leastConn(c: Choice, now: number): Peer | undefined {
  if (c.group.single) return roundRobin(c, now)
  for (;;) {
    const peers = c.group.peers
    let best: Peer | undefined
    let first = 0
    let many = false
    peers.forEach((p, i) => {
      if (!usable(c, p, now)) return
      if (!best || p.conns * best.server.weight < best.conns * p.server.weight) {
        best = p
        first = i
        many = false
      } else if (p.conns * best.server.weight === best.conns * p.server.weight) many = true
    })
    const least = best as Peer | undefined
    if (least && many) {
      const same = (p: Peer) => p.conns * least.server.weight === least.conns * p.server.weight
      return picked(c, smoothWeighted(c, peers.slice(first), now, same) as Peer, now)
    }
    if (least) return picked(c, least, now)
    const backup = c.group.backup
    if (!backup) return undefined
    c.group = backup
    c.tried.clear()
  }
}
