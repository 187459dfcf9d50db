import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatAddress, parseAddress, UsageError } from '../src/index.js'

test('parseAddress reads every form stunnel, varnishd and nginx accept', () => {
  assert.deepEqual(parseAddress('80'), { host: '0.0.0.0', port: 80 })
  assert.deepEqual(parseAddress(':80'), { host: '0.0.0.0', port: 80 })
  assert.deepEqual(parseAddress('*:80'), { host: '0.0.0.0', port: 80 })
  assert.deepEqual(parseAddress('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 })
  assert.deepEqual(parseAddress('localhost:3000'), { host: 'localhost', port: 3000 })
  assert.deepEqual(parseAddress('[::1]:443'), { host: '::1', port: 443 })
  assert.deepEqual(parseAddress('3000', '127.0.0.1'), { host: '127.0.0.1', port: 3000 })
})

test('parseAddress refuses what no real program would take', () => {
  for (const bad of ['', 'x', ':', '1.2.3.4:', '1.2.3.4:65536', '::1:80', '[::1]80', '[nothost]:80', '80a']) {
    assert.throws(() => parseAddress(bad), UsageError, bad)
  }
})

test('formatAddress brackets IPv6', () => {
  assert.equal(formatAddress({ host: '::1', port: 80 }), '[::1]:80')
  assert.equal(formatAddress({ host: '127.0.0.1', port: 80 }), '127.0.0.1:80')
})
