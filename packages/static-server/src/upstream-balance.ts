import type { BalanceMethod, UpstreamModel } from './config/model.js'
import { chash, chashChoice, chashRing, hash, keyBytes } from './upstream-hash.js'
import { ipHash, ipHashChoice } from './upstream-ip-hash.js'
import { leastConn } from './upstream-least-conn.js'
import { Choice, type Peer, type PeerGroup, peerGroups, roundRobin, settle } from './upstream-peer.js'
import { random, randomTwo } from './upstream-random.js'
import { expand, type VariableSource } from './variables.js'

/**
 * An upstream's balancing method over its peers: what it hashes is read once a request
 * (`begin`, nginx's peer.init), then each try asks for the next peer (`next`, peer.get) and
 * reports how it went (`settle`, peer.free). Everything a method needs from the servers (the
 * ketama ring) is built here, once, at load.
 */
export class Balancer {
  readonly primary: PeerGroup
  readonly #method: BalanceMethod
  readonly #ring: ReturnType<typeof chashRing>

  constructor(model: UpstreamModel) {
    this.primary = peerGroups(model.servers)
    this.#method = model.method
    this.#ring = model.method.kind === 'hash' && model.method.consistent ? chashRing(this.primary) : []
  }

  /** Peers of every group: nginx's tries for one request (ngx_http_upstream_tries). */
  get peerCount(): number {
    return this.primary.peers.length + (this.primary.backup?.peers.length ?? 0)
  }

  begin(vars: VariableSource): Choice {
    const m = this.#method
    if (m.kind === 'ip-hash') return ipHashChoice(this.primary, vars.get('remote_addr'))
    if (m.kind !== 'hash') return new Choice(this.primary)
    const key = expand(m.key, vars)
    return m.consistent ? chashChoice(this.primary, this.#ring, key) : new Choice(this.primary, keyBytes(key))
  }

  /** The next peer for this request, or undefined: nginx's "no live upstreams". */
  next(c: Choice, now: number): Peer | undefined {
    const m = this.#method
    switch (m.kind) {
      case 'round-robin':
        return roundRobin(c, now)
      case 'least-conn':
        return leastConn(c, now)
      case 'ip-hash':
        return ipHash(c, now)
      case 'hash':
        return m.consistent ? chash(c, this.#ring, now) : hash(c, now)
      case 'random':
        return m.two ? randomTwo(c, now) : random(c, now)
    }
  }

  settle(c: Choice, p: Peer, failed: boolean, now: number): void {
    settle(c, p, failed, now)
  }
}
