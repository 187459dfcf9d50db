import net from 'node:net'
import type { UpstreamModel, UpstreamServer } from './config/model.js'

export interface Peer {
  readonly server: UpstreamServer
  readonly address: string
  fails: number
  /** When the peer last failed (nginx's checked); it is tried again after fail_timeout. */
  failedAt: number
  current: number
  effective: number
  /** Connections in use by requests (least_conn's count). */
  active: number
}

/** An idle keep-alive connection and how many requests it has carried. */
interface Idle {
  socket: net.Socket
  peer: Peer
  requests: number
  createdAt: number
  timer: NodeJS.Timeout
}

/** A connection handed to a request: `requests` counts the one about to be sent. */
export interface Lease {
  socket: net.Socket
  peer: Peer
  /** Came from the keep-alive cache: a failure before any answer is retried without counting. */
  reused: boolean
  requests: number
  createdAt: number
}

/**
 * One `upstream {}` block (or the implicit one of `proxy_pass http://host:port`): nginx's
 * smooth weighted round robin over the live primary peers (ngx_http_upstream_round_robin.c),
 * the backups only when no primary is left, `down` peers never, max_fails / fail_timeout
 * taking a failing peer out for a while, and the `keepalive N` cache of idle connections with
 * keepalive_requests, keepalive_time and keepalive_timeout (ngx_http_upstream_keepalive_module).
 */
export class Upstream {
  readonly name: string
  readonly model: UpstreamModel
  readonly #primary: Peer[]
  readonly #backup: Peer[]
  /** nginx never marks the only peer of an upstream down (peers->single): it is always tried. */
  readonly #single: boolean
  /** Most recently used last, as nginx's cache queue. */
  readonly #idle: Idle[] = []
  #closed = false

  constructor(model: UpstreamModel) {
    this.name = model.name
    this.model = model
    const peer = (s: UpstreamServer): Peer => ({
      server: s,
      address: `${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`,
      fails: 0,
      failedAt: 0,
      current: 0,
      effective: s.weight,
      active: 0,
    })
    this.#primary = model.servers.filter((s) => !s.backup).map(peer)
    this.#backup = model.servers.filter((s) => s.backup).map(peer)
    this.#single = this.#primary.length === 1 && this.#backup.length === 0
  }

  /** nginx's tries for one request: every peer once (primary and backup). */
  get peerCount(): number {
    return this.#primary.length + this.#backup.length
  }

  /** The next peer not in `tried`, or undefined when none is left ("no live upstreams"). */
  pick(tried: ReadonlySet<Peer>, now = Date.now()): Peer | undefined {
    return this.#choose(this.#primary, tried, now) ?? this.#choose(this.#backup, tried, now)
  }

  #live(p: Peer, tried: ReadonlySet<Peer>, now: number): boolean {
    const s = p.server
    if (tried.has(p) || s.down) return false
    return this.#single || s.maxFails === 0 || p.fails < s.maxFails || now - p.failedAt > s.failTimeoutMs
  }

  #choose(all: Peer[], tried: ReadonlySet<Peer>, now: number): Peer | undefined {
    let peers = all.filter((p) => this.#live(p, tried, now))
    // ngx_http_upstream_get_least_conn_peer: the fewest active connections for the weight;
    // several such peers share by smooth weighted round robin.
    if (this.model.leastConn && peers.length > 1) {
      let min = peers[0] as Peer
      for (const p of peers) if (p.active * min.server.weight < min.active * p.server.weight) min = p
      peers = peers.filter((p) => p.active * min.server.weight === min.active * p.server.weight)
    }
    let best: Peer | undefined
    let total = 0
    for (const p of peers) {
      const s = p.server
      p.current += p.effective
      total += p.effective
      if (p.effective < s.weight) p.effective++
      if (!best || p.current > best.current) best = p
    }
    if (best) best.current -= total
    return best
  }

  /** ngx_http_upstream_free_round_robin_peer with NGX_PEER_FAILED. */
  failed(p: Peer, now = Date.now()): void {
    if (this.#single) return
    p.fails++
    p.failedAt = now
    const s = p.server
    if (s.maxFails > 0) p.effective = Math.max(0, p.effective - Math.floor(s.weight / s.maxFails))
  }

  /** A success after fail_timeout has passed forgets the failures (peer->accessed > checked). */
  succeeded(p: Peer, now = Date.now()): void {
    if (p.fails > 0 && now - p.failedAt > p.server.failTimeoutMs) p.fails = 0
  }

  /** A cached connection to `peer`, or a new one (refused or late: an error the caller maps). */
  connect(peer: Peer, connectTimeoutMs: number): Promise<Lease> {
    for (let i = this.#idle.length - 1; i >= 0; i--) {
      const c = this.#idle[i] as Idle
      if (c.peer !== peer) continue
      this.#idle.splice(i, 1)
      clearTimeout(c.timer)
      c.socket.removeAllListeners('close')
      c.socket.removeAllListeners('data')
      c.socket.removeAllListeners('error')
      this.#count(c.socket, peer)
      return Promise.resolve({ socket: c.socket, peer, reused: true, requests: c.requests + 1, createdAt: c.createdAt })
    }
    return new Promise((resolve, reject) => {
      const s = peer.server
      const socket = net.connect({ host: s.host, port: s.port, noDelay: true })
      const timer = setTimeout(() => socket.destroy(Object.assign(new Error('upstream timed out (connect)'), { code: 'ETIMEDOUT' })), connectTimeoutMs)
      socket.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      this.#count(socket, peer)
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.removeAllListeners('error')
        resolve({ socket, peer, reused: false, requests: 1, createdAt: Date.now() })
      })
    })
  }

  /**
   * Gives a connection back after a complete answer: kept when `keepalive N` is set, the
   * answer allowed it, keepalive_requests and keepalive_time are not reached; the least
   * recently used one is closed when the cache is full.
   */
  /** A connection counts as active for its peer until it closes or goes idle. */
  #count(socket: net.Socket, peer: Peer): void {
    peer.active++
    const done = () => {
      peer.active--
      socket.off('close', done)
      socket.off('idle', done)
    }
    socket.once('close', done)
    socket.once('idle', done)
  }

  release(lease: Lease, reusable: boolean): void {
    const m = this.model
    const socket = lease.socket
    if (this.#closed || !reusable || m.keepalive === 0 || lease.requests >= m.keepaliveRequests || Date.now() - lease.createdAt >= m.keepaliveTimeMs) {
      socket.destroy()
      return
    }
    if (this.#idle.length >= m.keepalive) this.#drop(this.#idle[0] as Idle)
    const idle: Idle = {
      socket,
      peer: lease.peer,
      requests: lease.requests,
      createdAt: lease.createdAt,
      timer: setTimeout(() => this.#drop(idle), m.keepaliveTimeoutMs),
    }
    // An idle connection that speaks or closes is not reusable (ngx_http_upstream_keepalive_close_handler).
    socket.on('data', () => this.#drop(idle))
    socket.on('close', () => this.#drop(idle))
    socket.on('error', () => this.#drop(idle))
    socket.setTimeout(0)
    socket.emit('idle')
    this.#idle.push(idle)
  }

  #drop(c: Idle): void {
    const i = this.#idle.indexOf(c)
    if (i >= 0) this.#idle.splice(i, 1)
    clearTimeout(c.timer)
    c.socket.destroy()
  }

  close(): Promise<void> {
    this.#closed = true
    for (const c of [...this.#idle]) this.#drop(c)
    return Promise.resolve()
  }
}
