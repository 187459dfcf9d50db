import assert from 'node:assert/strict'
import { test } from 'node:test'
import { stripHopByHop } from '../src/index.js'

test('strips hop-by-hop fields and those Connection names, keeping case and order', () => {
  const raw = ['Host', 'a', 'Connection', 'keep-alive, X-Secret', 'X-Secret', '1', 'Keep-Alive', 'timeout=5', 'Accept', '*/*']
  assert.deepEqual(stripHopByHop(raw, 'keep-alive, X-Secret'), ['Host', 'a', 'Accept', '*/*'])
})

test('Connection can never remove framing or identity fields', () => {
  const raw = ['Host', 'a', 'Content-Length', '3', 'X-Forwarded-For', '1.2.3.4', 'Connection', 'close, host, content-length, x-forwarded-for']
  assert.deepEqual(stripHopByHop(raw, raw[7]), ['Host', 'a', 'Content-Length', '3', 'X-Forwarded-For', '1.2.3.4'])
})
