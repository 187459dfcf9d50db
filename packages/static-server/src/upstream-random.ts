import { randomInt } from 'node:crypto'
import { type Choice, type Peer, type PeerGroup, picked, roundRobin, usable } from './upstream-peer.js'

/**
 * ngx_http_upstream_peek_random_peer: a server drawn with probability weight / total weight.
 * nginx draws from random(3) seeded per worker, so only the distribution is nginx's, never the
 * sequence.
 */
function draw(g: PeerGroup): Peer {
  let x = randomInt(g.totalWeight)
  for (const p of g.peers) {
    if (x < p.server.weight) return p
    x -= p.server.weight
  }
  return g.peers[g.peers.length - 1] as Peer
}

/**
 * ngx_http_upstream_get_random_peer (`random`): draws until a usable primary server comes up,
 * 20 failed draws at most before round robin decides (as it does with fewer than two servers).
 */
export function random(c: Choice, now: number): Peer | undefined {
  const g = c.group
  if (c.tries > 20 || g.peers.length < 2) return roundRobin(c, now)
  for (;;) {
    const p = draw(g)
    if (usable(c, p, now)) return picked(c, p, now)
    if (++c.tries > 20) return roundRobin(c, now)
  }
}

/**
 * ngx_http_upstream_get_random2_peer (`random two [least_conn]`): two different usable servers
 * drawn, and of the two the one with fewer requests in flight for its weight (the first drawn
 * on a tie).
 */
export function randomTwo(c: Choice, now: number): Peer | undefined {
  const g = c.group
  if (c.tries > 20 || g.peers.length < 2) return roundRobin(c, now)
  let first: Peer | undefined
  for (;;) {
    const p = draw(g)
    if (p !== first && usable(c, p, now)) {
      if (first) return picked(c, p.conns * first.server.weight > first.conns * p.server.weight ? first : p, now)
      first = p
    }
    if (++c.tries > 20) return roundRobin(c, now)
  }
}
