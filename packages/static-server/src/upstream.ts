import net from 'node:net'
import type { UpstreamModel } from './config/model.js'
import { Balancer } from './upstream-balance.js'
import { type Choice, nowSec, type Peer } from './upstream-peer.js'
import type { VariableSource } from './variables.js'

export type { Choice, Peer }

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
 * One `upstream {}` block (or the implicit one of `proxy_pass http://host:port`): its balancing
 * method over the peers (upstream-balance.ts: round robin, least_conn, ip_hash, hash, random;
 * backups only when no primary is left, `down` peers never, max_fails / fail_timeout taking a
 * failing peer out for a while, max_conns), and the `keepalive N` cache of idle connections
 * with keepalive_requests, keepalive_time and keepalive_timeout
 * (ngx_http_upstream_keepalive_module).
 */
export class Upstream {
  readonly name: string
  readonly model: UpstreamModel
  readonly #balancer: Balancer
  /** Most recently used last, as nginx's cache queue. */
  readonly #idle: Idle[] = []
  #closed = false

  constructor(model: UpstreamModel) {
    this.name = model.name
    this.model = model
    this.#balancer = new Balancer(model)
  }

  /** nginx's tries for one request: every peer once (primary and backup). */
  get peerCount(): number {
    return this.#balancer.peerCount
  }

  /** One request's choice: the key or client address its method hashes, read now. */
  begin(vars: VariableSource): Choice {
    return this.#balancer.begin(vars)
  }

  /** The next peer for this request, or undefined when none is left ("no live upstreams"). */
  pick(c: Choice, now = nowSec()): Peer | undefined {
    return this.#balancer.next(c, now)
  }

  /** How a try at `p` went (ngx_http_upstream_free_round_robin_peer's NGX_PEER_FAILED or not). */
  settle(c: Choice, p: Peer, failed: boolean, now = nowSec()): void {
    this.#balancer.settle(c, p, failed, now)
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

  /** A connection is a request in flight to its peer (nginx's peer->conns) until it closes or goes idle. */
  #count(socket: net.Socket, peer: Peer): void {
    peer.conns++
    const done = () => {
      peer.conns--
      socket.off('close', done)
      socket.off('idle', done)
    }
    socket.once('close', done)
    socket.once('idle', done)
  }

  /**
   * Gives a connection back after a complete answer: kept when `keepalive N` is set, the
   * answer allowed it, keepalive_requests and keepalive_time are not reached; the least
   * recently used one is closed when the cache is full.
   */
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
