import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseHttpDate } from '../src/index.js'

const NOW = Date.UTC(2026, 11, 6)
const at = (iso: string) => Date.parse(iso)

test('the three forms of RFC 9110 §5.6.7, in UTC', () => {
  const t = at('1994-11-06T08:49:37Z')
  assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT', NOW), t)
  assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW), t)
  assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994', NOW), t)
  assert.equal(parseHttpDate('Sun Nov 06 08:49:37 1994', NOW), t)
  assert.equal(parseHttpDate('Thu, 29 Feb 2024 23:59:60 GMT', NOW), at('2024-02-29T23:59:59Z'))
  assert.equal(parseHttpDate('Mon, 01 Jan 0001 00:00:00 GMT', NOW), at('0001-01-01T00:00:00Z'))
})

test('rfc850 two-digit years: more than 50 years ahead is the previous century', () => {
  assert.equal(parseHttpDate('Wednesday, 01-Jan-76 00:00:00 GMT', NOW), at('2076-01-01T00:00:00Z'))
  assert.equal(parseHttpDate('Saturday, 01-Jan-77 00:00:00 GMT', NOW), at('1977-01-01T00:00:00Z'))
  assert.equal(parseHttpDate('Saturday, 01-Jan-00 00:00:00 GMT', NOW), at('2000-01-01T00:00:00Z'))
  // In 2090, "00" is 2100 (ten years ahead), and 1 January 2100 is a Friday.
  assert.equal(parseHttpDate('Friday, 01-Jan-00 00:00:00 GMT', Date.UTC(2090, 0, 1)), at('2100-01-01T00:00:00Z'))
})

test('anything else is invalid', () => {
  for (const bad of [
    '',
    '0',
    '-1',
    '1733443200',
    'Sun, 06 Nov 1994 08:49:37 UTC',
    'Sun, 06 Nov 1994 08:49:37 gmt',
    'Sun 06 Nov 1994 08:49:37 GMT',
    'Sun,  06 Nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994  08:49:37 GMT',
    'Sun, 06-Nov-1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 8:49:37 GMT',
    'Sun, 6 Nov 1994 08:49:37 GMT',
    'Sun, 06 nov 1994 08:49:37 GMT',
    'sun, 06 Nov 1994 08:49:37 GMT',
    'Mon, 06 Nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 24:00:00 GMT',
    'Sun, 06 Nov 1994 08:60:00 GMT',
    'Sun, 06 Nov 1994 08:49:61 GMT',
    'Thu, 31 Feb 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 08:49:37 GMT ',
    ' Sun, 06 Nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 08:49:37 +0000',
    'Sun, 06 Nov 94 08:49:37 GMT',
    'Sun, 06-Nov-94 08:49:37 GMT',
    'Sunday, 06 Nov 1994 08:49:37 GMT',
    'Sunday, 06-Nov-1994 08:49:37 GMT',
    'Sunday, 06-Nov-94 08:49:37 UTC',
    'Sun Nov 6 08:49:37 1994',
    'Sun Nov  6 08:49:37 94',
    'Sun Nov  6 08:49:37 1994 GMT',
    'Sun Nov  0 08:49:37 1994',
    'Sun Nov  6 8:49:37  1994',
    '1994-11-06T08:49:37Z',
    'Sun, 06 Nov 1994 08:49:37 GMT\u0000',
  ]) {
    assert.equal(parseHttpDate(bad, NOW), undefined, JSON.stringify(bad))
  }
})
