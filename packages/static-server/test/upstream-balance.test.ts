import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { BalanceMethod, UpstreamModel, UpstreamServer } from '../src/config/model.js'
import { Balancer } from '../src/upstream-balance.js'
import { chashRing } from '../src/upstream-hash.js'
import type { Peer } from '../src/upstream-peer.js'
import { compileTemplate, type VariableSource } from '../src/variables.js'

/**
 * The peers' bookkeeping on nginx's clock (whole seconds, injected here rather than waited
 * for): how max_fails / fail_timeout take a server out and bring it back, and what a success
 * forgives. Where each request lands is differential-balance.test.ts's business (against
 * nginx); this is the part a test cannot wait for.
 */

const server = (port: number, extra: Partial<UpstreamServer> = {}): UpstreamServer => ({
  name: `127.0.0.1:${port}`,
  host: '127.0.0.1',
  port,
  weight: 1,
  maxFails: 1,
  failTimeoutSec: 10,
  maxConns: 0,
  backup: false,
  down: false,
  ...extra,
})

const upstream = (servers: UpstreamServer[], method: BalanceMethod = { kind: 'round-robin' }): UpstreamModel => ({
  name: 'u',
  servers,
  method,
  keepalive: 0,
  keepaliveRequests: 1000,
  keepaliveTimeMs: 3_600_000,
  keepaliveTimeoutMs: 60_000,
})

const vars = (values: Record<string, string>): VariableSource => ({ get: (n) => values[n] ?? '' })

/** One request's first pick at time `now`, settled as `failed`. */
function request(b: Balancer, now: number, failed: (p: Peer) => boolean, v = vars({})): number {
  const c = b.begin(v)
  const p = b.next(c, now) as Peer
  b.settle(c, p, failed(p), now)
  return p.server.port
}

test('max_fails=1: out for fail_timeout seconds counted from the failure, inclusive, then tried again', () => {
  const b = new Balancer(upstream([server(1), server(2)]))
  const dead = (p: Peer) => p.server.port === 1
  assert.equal(request(b, 100, dead), 1)
  // nginx: now - checked <= fail_timeout keeps it out; 110 - 100 = 10 still does.
  for (const now of [100, 105, 110]) assert.equal(request(b, now, dead), 2)
  // Back once fail_timeout has passed, at the weight the failure lowered (0, climbing by one a
  // pick): the other server twice, then it; its success forgives the failure.
  assert.deepEqual([111, 111, 111, 111].map((now) => request(b, now, () => false)), [2, 2, 1, 2])
  assert.equal(b.primary.peers[0]?.fails, 0)
})

test('max_fails=3: a success before fail_timeout has passed does not forgive earlier failures', () => {
  const b = new Balancer(upstream([server(1, { maxFails: 3 }), server(2)]))
  const at1 = (p: Peer) => p.server.port === 1
  // Fails once at 100; a success at 101 comes before any pick after fail_timeout: fails stays 1.
  assert.equal(request(b, 100, at1), 1)
  const seq: number[] = []
  for (let i = 0; i < 4; i++) seq.push(request(b, 101, () => false))
  // Two more failures (3 in all) take it out although a success came between.
  let failures = 0
  for (let i = 0; i < 6 && failures < 2; i++) if (request(b, 102, at1) === 1) failures++
  assert.equal(failures, 2)
  for (let i = 0; i < 4; i++) assert.equal(request(b, 103, () => false), 2)
  assert.ok(seq.includes(1) && seq.includes(2))
})

test('a failure lowers the effective weight by weight / max_fails; it climbs back one a pick', () => {
  const b = new Balancer(upstream([server(1, { weight: 4, maxFails: 2 }), server(2, { weight: 1, maxFails: 0 })]))
  const landed: number[] = []
  landed.push(request(b, 100, (p) => p.server.port === 1))
  const peer = b.primary.peers[0] as Peer
  assert.equal(peer.effectiveWeight, 2)
  landed.push(request(b, 100, () => false))
  assert.equal(peer.effectiveWeight, 3)
})

test('the single peer is never marked failed; down is final', () => {
  const b = new Balancer(upstream([server(1)]))
  for (let i = 0; i < 3; i++) assert.equal(request(b, 100 + i, () => true), 1)
  assert.equal(b.primary.peers[0]?.fails, 0)
  const down = new Balancer(upstream([server(1, { down: true }), server(2, { backup: true })]))
  assert.equal(request(down, 100, () => false), 2)
})

test('ip_hash keys on a /24 for IPv4 and on the whole IPv6 address', () => {
  const b = new Balancer(upstream([1, 2, 3, 4, 5, 6, 7].map((p) => server(p)), { kind: 'ip-hash' }))
  const at = (addr: string) => request(b, 100, () => false, vars({ remote_addr: addr }))
  const same24 = new Set(Array.from({ length: 20 }, (_, i) => at(`198.51.100.${i}`)))
  assert.equal(same24.size, 1)
  const v6 = new Set(Array.from({ length: 20 }, (_, i) => at(`2001:db8::${i.toString(16)}`)))
  assert.ok(v6.size > 1)
})

test('hash consistent: 160 points a unit of weight; removing a server moves only its keys', () => {
  const four = [server(1), server(2, { weight: 2 }), server(3), server(4)]
  assert.equal(chashRing(new Balancer(upstream(four)).primary).length, 5 * 160)
  const method: BalanceMethod = { kind: 'hash', key: compileTemplate('$arg_k'), consistent: true }
  const keys = Array.from({ length: 300 }, (_, i) => `key-${i}`)
  const land = (servers: UpstreamServer[]) => {
    const b = new Balancer(upstream(servers, method))
    return keys.map((k) => request(b, 100, () => false, vars({ arg_k: k })))
  }
  const before = land(four)
  const after = land(four.filter((s) => s.port !== 3))
  keys.forEach((_, i) => {
    if (before[i] !== 3) assert.equal(after[i], before[i], 'a key of a remaining server stays')
  })
})
