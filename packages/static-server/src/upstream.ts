import { readingBareLfHeads } from '@edgestack/common'
import { buildConnector, Pool } from 'undici'
import type { UpstreamModel, UpstreamServer } from './config/model.js'

export interface Peer {
  readonly server: UpstreamServer
  readonly address: string
  readonly pool: Pool
  fails: number
  /** When the peer was last marked failed; it is tried again after fail_timeout. */
  failedAt: number
  current: number
}

export interface PoolTimeouts {
  connectMs: number
  readMs: number
}

/**
 * One `upstream {}` block: nginx's smooth weighted round robin over the live primary peers,
 * the backups only when every primary is down, and max_fails / fail_timeout marking a peer
 * down for a while. Each peer has an undici keep-alive pool (`keepalive` sizes it).
 */
export class Upstream {
  readonly name: string
  readonly #primary: Peer[]
  readonly #backup: Peer[]
  /** nginx never marks the only peer of an upstream down (peers->single): it is always tried. */
  readonly #single: boolean

  constructor(model: UpstreamModel, timeouts: PoolTimeouts) {
    this.name = model.name
    const peer = (s: UpstreamServer): Peer => {
      const address = `${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`
      return {
        server: s,
        address,
        pool: new Pool(`http://${address}`, {
          connections: Math.max(model.keepalive, 64),
          // nginx's upstream parser takes bare-LF line ends in a response head (RFC 9112 §2.2).
          connect: readingBareLfHeads(buildConnector({ timeout: timeouts.connectMs })),
          headersTimeout: timeouts.readMs,
          bodyTimeout: timeouts.readMs,
          keepAliveTimeout: 60_000,
        }),
        fails: 0,
        failedAt: 0,
        current: 0,
      }
    }
    this.#primary = model.servers.filter((s) => !s.backup).map(peer)
    this.#backup = model.servers.filter((s) => s.backup).map(peer)
    this.#single = this.#primary.length + this.#backup.length === 1
  }

  get peerCount(): number {
    return this.#primary.length + this.#backup.length
  }

  /** The next peer not in `tried`, or undefined when none is left ("no live upstreams"). */
  pick(tried: ReadonlySet<Peer>): Peer | undefined {
    const now = Date.now()
    return this.#choose(this.#primary, tried, now) ?? this.#choose(this.#backup, tried, now)
  }

  #choose(peers: Peer[], tried: ReadonlySet<Peer>, now: number): Peer | undefined {
    let best: Peer | undefined
    let total = 0
    for (const p of peers) {
      if (tried.has(p)) continue
      const s = p.server
      if (!this.#single && s.maxFails > 0 && p.fails >= s.maxFails && now - p.failedAt < s.failTimeoutMs) continue
      p.current += s.weight
      total += s.weight
      if (!best || p.current > best.current) best = p
    }
    if (best) best.current -= total
    return best
  }

  failed(p: Peer): void {
    const now = Date.now()
    if (now - p.failedAt >= p.server.failTimeoutMs) p.fails = 0
    p.fails++
    p.failedAt = now
  }

  succeeded(p: Peer): void {
    if (p.fails > 0 && Date.now() - p.failedAt >= p.server.failTimeoutMs) p.fails = 0
  }

  async close(): Promise<void> {
    await Promise.all([...this.#primary, ...this.#backup].map((p) => p.pool.close().catch(() => {})))
  }
}
