import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ObjectStore, StoredObject } from '../src/index.js'

const req = { headers: [], url: '/', ignoreBusy: false, alwaysMiss: false }
const counters = () => ({ n_object: 0, n_lru_nuked: 0, n_expired: 0 })

function stored(ttlS: number, now: number): StoredObject {
  const o = new StoredObject(1, 'h')
  o.setHead(200, 'OK', ['Content-Type', 'text/plain'])
  o.ttl = ttlS
  o.tOrigin = now
  o.complete()
  return o
}

describe('ObjectStore', () => {
  test('an object inserted in place of the only one under its hash, no fetch busy, is found', (t) => {
    const store = new ObjectStore(1 << 20, counters())
    t.after(() => store.close())
    store.insert(stored(60, 0), 0)
    const second = stored(60, 1000)
    store.insert(second, 1000)
    const r = store.lookup('h', req, 2000)
    assert.equal(r.kind, 'hit')
    assert.equal(r.kind === 'hit' && r.obj, second)
    assert.equal(store.objectCount, 1)
  })

  test('inactiveMs: an object no lookup returned for that long is gone, one read stays', (t) => {
    const store = new ObjectStore(1 << 20, counters(), { inactiveMs: 10_000 })
    t.after(() => store.close())
    store.insert(stored(3600, 0), 0)
    assert.equal(store.lookup('h', req, 9000).kind, 'hit')
    // Read at 9 s: inactive counts from there.
    assert.equal(store.lookup('h', req, 18_000).kind, 'hit')
    assert.equal(store.lookup('h', req, 28_001).kind, 'miss')
    assert.equal(store.objectCount, 0)
  })
})
