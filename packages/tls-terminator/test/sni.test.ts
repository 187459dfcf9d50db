import assert from 'node:assert/strict'
import { test } from 'node:test'
import { matchesServerName, pickByServerName } from '../src/index.js'

test("SNI patterns match as stunnel's matches_wildcard: exact, or a suffix after a leading *", () => {
  const cases: [string, string, boolean][] = [
    ['www.example.com', 'www.example.com', true],
    ['www.example.com', 'WWW.EXAMPLE.COM', true],
    ['www.example.com', 'example.com', false],
    ['*.example.com', 'a.example.com', true],
    ['*.example.com', 'a.b.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'badexample.com', false],
    ['*example.com', 'badexample.com', true],
    ['*', 'anything', true],
  ]
  for (const [pattern, name, expected] of cases) assert.equal(matchesServerName(pattern, name), expected, `${pattern} ~ ${name}`)
})

test('the first matching virtual host wins; no name or no match goes to the primary', () => {
  const hosts = [
    { pattern: 'a.example.com', service: 'A' },
    { pattern: '*.example.com', service: 'W' },
  ]
  assert.equal(pickByServerName('P', hosts, 'a.example.com'), 'A')
  assert.equal(pickByServerName('P', hosts, 'b.example.com'), 'W')
  assert.equal(pickByServerName('P', hosts, 'example.org'), 'P')
  assert.equal(pickByServerName('P', hosts, undefined), 'P')
  assert.equal(pickByServerName('P', hosts, false), 'P')
})
