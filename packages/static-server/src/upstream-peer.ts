import type { UpstreamServer } from './config/model.js'

/** One server of an upstream and what nginx keeps about it (ngx_http_upstream_rr_peer_t). */
export interface Peer {
  readonly server: UpstreamServer
  /** `host:port`, as $upstream_addr shows it. */
  readonly address: string
  fails: number
  /** When it last failed (s). */
  accessed: number
  /** When it was last picked after fail_timeout had passed (s): a success after that forgives its failures. */
  checked: number
  currentWeight: number
  effectiveWeight: number
  /** Requests in flight to it: least_conn, `random two` and max_conns count them. */
  conns: number
}

/** The primary servers of an upstream, or its backups (ngx_http_upstream_rr_peers_t). */
export interface PeerGroup {
  readonly peers: readonly Peer[]
  readonly totalWeight: number
  /** One primary and no backup: nginx never marks it failed and tries it whatever happened before. */
  readonly single: boolean
  readonly backup: PeerGroup | undefined
}

const NO_KEY = Buffer.alloc(0)

/**
 * One request's way through the peers: ngx_http_upstream_rr_peer_data_t (the group in use and
 * the peers tried) and the fields the hashing methods keep beside it.
 */
export class Choice {
  group: PeerGroup
  readonly tried = new Set<Peer>()
  /** Picks the method gave up on; past 20 it leaves the choice to round robin. */
  tries = 0
  hash: number
  rehash = 0
  /** The bytes `hash` hashes, or the address bytes ip_hash hashes. */
  readonly key: Buffer

  constructor(group: PeerGroup, key: Buffer = NO_KEY, hash = 0) {
    this.group = group
    this.key = key
    this.hash = hash
  }
}

/** nginx's clock for peers: ngx_time(), whole seconds. */
export const nowSec = (): number => Math.floor(Date.now() / 1000)

export function peerGroups(servers: readonly UpstreamServer[]): PeerGroup {
  const peer = (s: UpstreamServer): Peer => ({
    server: s,
    address: `${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`,
    fails: 0,
    accessed: 0,
    checked: 0,
    currentWeight: 0,
    effectiveWeight: s.weight,
    conns: 0,
  })
  const group = (list: UpstreamServer[], single: boolean, backup?: PeerGroup): PeerGroup => ({
    peers: list.map(peer),
    totalWeight: list.reduce((n, s) => n + s.weight, 0),
    single,
    backup,
  })
  const primary = servers.filter((s) => !s.backup)
  const backup = servers.filter((s) => s.backup)
  return group(primary, primary.length === 1 && backup.length === 0, backup.length > 0 ? group(backup, false) : undefined)
}

/** A peer the methods may pick: not tried by this request, not down, not failed out, below max_conns. */
export function usable(c: Choice, p: Peer, now: number): boolean {
  const s = p.server
  if (c.tried.has(p) || s.down) return false
  if (s.maxFails > 0 && p.fails >= s.maxFails && now - p.checked <= s.failTimeoutSec) return false
  return s.maxConns === 0 || p.conns < s.maxConns
}

/** The bookkeeping of every method once it has its peer. */
export function picked(c: Choice, p: Peer, now: number): Peer {
  c.tried.add(p)
  if (now - p.checked > p.server.failTimeoutSec) p.checked = now
  return p
}

/**
 * ngx_http_upstream_get_round_robin_peer: the smooth weighted round robin over the usable peers
 * of the group in use; when none is left, the backups (once, with nothing tried there yet).
 */
export function roundRobin(c: Choice, now: number): Peer | undefined {
  for (;;) {
    const g = c.group
    if (g.single) {
      // The single peer is not checked against max_fails, and not marked tried.
      const p = g.peers[0] as Peer
      if (!p.server.down && (p.server.maxConns === 0 || p.conns < p.server.maxConns)) return p
    } else {
      const p = smoothWeighted(c, g.peers, now)
      if (p) return picked(c, p, now)
    }
    if (!g.backup) return undefined
    c.group = g.backup
    c.tried.clear()
  }
}

/**
 * ngx_http_upstream_get_peer: each usable peer gains its effective weight, the one with the
 * most current weight wins (the first of equals) and gives back the total; an effective weight
 * lowered by failures recovers by one a pick.
 */
export function smoothWeighted(c: Choice, peers: readonly Peer[], now: number, only?: (p: Peer) => boolean): Peer | undefined {
  let best: Peer | undefined
  let total = 0
  for (const p of peers) {
    if (!usable(c, p, now) || (only && !only(p))) continue
    p.currentWeight += p.effectiveWeight
    total += p.effectiveWeight
    if (p.effectiveWeight < p.server.weight) p.effectiveWeight++
    if (!best || p.currentWeight > best.currentWeight) best = p
  }
  if (best) best.currentWeight -= total
  return best
}

/**
 * ngx_http_upstream_free_round_robin_peer, for every method: a failure counts towards max_fails
 * and lowers the peer's effective weight; anything else forgives its failures once it was
 * picked again after fail_timeout. The single peer keeps no score.
 */
export function settle(c: Choice, p: Peer, failed: boolean, now: number): void {
  if (c.group.single) return
  const s = p.server
  if (failed) {
    p.fails++
    p.accessed = now
    p.checked = now
    if (s.maxFails > 0) p.effectiveWeight -= Math.floor(s.weight / s.maxFails)
    if (p.effectiveWeight < 0) p.effectiveWeight = 0
  } else if (p.accessed < p.checked) p.fails = 0
}
