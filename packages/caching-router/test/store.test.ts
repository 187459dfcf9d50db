import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { CacheObject } from '../src/cache-object.js'
import { Counters } from '../src/counters.js'
import { CacheStore } from '../src/store.js'

const req = { headers: [], url: '/', ignoreBusy: false, alwaysMiss: false }

function marker(xid: number, ttlS: number, now: number): CacheObject {
  const m = new CacheObject(xid, 'h')
  m.setHead(200, 'OK', [])
  m.hitForMiss = true
  m.ttl = ttlS
  m.tOrigin = now
  m.complete()
  return m
}

function stored(xid: number, ttlS: number, graceS: number, now: number): CacheObject {
  const o = new CacheObject(xid, 'h')
  o.setHead(200, 'OK', ['Content-Type', 'text/plain'])
  o.ttl = ttlS
  o.grace = graceS
  o.tOrigin = now
  o.complete()
  return o
}

describe('CacheStore: a hit-for-miss marker renewed in place', () => {
  test('the only object under its hash: renewed, its ttl counted from the new fetch', () => {
    const store = new CacheStore(1 << 20, new Counters())
    const m = marker(1, 120, 0)
    store.insert(m, 0)
    assert.equal(store.renewMarker('h', 120, 100_000), true)
    // 150 s after the first fetch the first ttl is over, the renewed one is not.
    const r = store.lookup('h', req, 150_000)
    assert.equal(r.kind, 'hitmiss')
    assert.equal(r.kind === 'hitmiss' && r.obj, m, 'the same marker, not a new one')
    assert.equal(store.objectCount, 1)
  })

  test('no marker, or nothing under the hash: not renewed', () => {
    const store = new CacheStore(1 << 20, new Counters())
    assert.equal(store.renewMarker('h', 120, 0), false)
    store.insert(stored(1, 60, 0, 0), 0)
    assert.equal(store.renewMarker('h', 120, 0), false)
    const r = store.lookup('h', req, 1000)
    assert.equal(r.kind, 'hit')
  })
})
