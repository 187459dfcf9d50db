import { isIP } from 'node:net'
import { ipv6 } from './ip-address.js'
import { Choice, type Peer, type PeerGroup, picked, roundRobin, usable } from './upstream-peer.js'

/**
 * ngx_http_upstream_init_ip_hash_peer: an IPv4 client is hashed by its first three octets (a
 * /24 lands on one server), an IPv6 client by all sixteen bytes, anything else (a unix socket)
 * by three zero bytes. The address is the one realip left ($remote_addr).
 */
export function ipHashChoice(group: PeerGroup, remoteAddr: string): Choice {
  const v = isIP(remoteAddr)
  let bytes: Buffer
  if (v === 4) bytes = Buffer.from(remoteAddr.split('.').slice(0, 3).map(Number))
  else if (v === 6) bytes = Buffer.from(ipv6(remoteAddr).toString(16).padStart(32, '0'), 'hex')
  else bytes = Buffer.alloc(3)
  return new Choice(group, bytes, 89)
}

/**
 * ngx_http_upstream_get_ip_hash_peer: hash = (hash * 113 + byte) % 6271 over the address, the
 * server found by hash % total weight along the primary servers in order (down ones included);
 * a server that cannot be used hashes again from there. After 20 such rounds, or with fewer
 * than two servers, round robin decides.
 */
export function ipHash(c: Choice, now: number): Peer | undefined {
  const g = c.group
  if (c.tries > 20 || g.peers.length < 2) return roundRobin(c, now)
  let hash = c.hash
  for (;;) {
    for (const b of c.key) hash = (hash * 113 + b) % 6271
    const p = weighted(g, hash % g.totalWeight)
    if (usable(c, p, now)) break
    if (++c.tries > 20) return roundRobin(c, now)
  }
  c.hash = hash
  return picked(c, weighted(g, hash % g.totalWeight), now)
}

/** The peer whose share of the total weight holds `w` (servers in the order written). */
export function weighted(g: PeerGroup, w: number): Peer {
  let i = 0
  let p = g.peers[0] as Peer
  while (w >= p.server.weight) {
    w -= p.server.weight
    p = g.peers[++i] as Peer
  }
  return p
}


