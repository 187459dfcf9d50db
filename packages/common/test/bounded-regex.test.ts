import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { compileBoundedPcre, type MatchLimits, RegexCompileError, RegexLimitError } from '../src/index.js'

const WIDE: MatchLimits = { matchLimit: 10_000_000, depthLimit: Number.POSITIVE_INFINITY }
const VARNISH: MatchLimits = { matchLimit: 10_000, depthLimit: Number.POSITIVE_INFINITY }

/** What RegExp#exec answers, as text, so two engines' answers compare in one assertion. */
function shape(m: RegExpExecArray | null): string {
  return m === null ? 'null' : JSON.stringify({ index: m.index, groups: [...m], named: m.groups ?? null })
}

describe('bounded regexes: the counting engine answers as V8 does', () => {
  // Each of these has a shape that sends it to the counting engine (nested quantifiers,
  // alternation under a quantifier, back-references, lookarounds).
  const patterns = [
    '^/(a+)+$',
    '(a|ab)(c|bcd)(d*)+',
    '(a*)*b',
    '(a*)+',
    '(?:a|b)*?c',
    '(?:ab|a){2,3}b',
    '(?=(a+))a*b\\1',
    '(?<=\\$)\\d+(\\.\\d*)?',
    '(?<!\\$)\\b\\d+',
    '(?<=(a+))b',
    '(?<=^\\w{2,3})x',
    '^(?:(a)|b)*$',
    '(z)((a+)?(b+)?(c))*',
    '(\\w+)\\s\\1',
    '(?<n>a)\\k<n>',
    '(?:(\\w+)\\.)+(com|org)$',
    '^(?:[a-z]+/)*[a-z]+\\.(?:css|js)$',
    '(?:a{1,2}){2,}?x',
    '((?:a|b)+?)c',
  ]
  const inputs = ['/aaaa', '/aaab', 'abcd', 'zaacbbbcac', 'foo foo', 'aab', 'aaa', '$1.50 42', 'ab', 'ba', 'bab', '', 'www.example.com', 'x/y/z.css', 'AB abab ABC', 'aaaax', 'a\nb', 'ccc', 'aaab', 'abx', 'abcx', 'abcdx']
  for (const p of patterns) {
    for (const caseless of [false, true]) {
      test(`${p}${caseless ? ' (caseless)' : ''}`, () => {
        const re = compileBoundedPcre(p, caseless)
        assert.ok(re.risk, `${p} should run on the counting engine`)
        const native = new RegExp(re.source, re.flags)
        for (const s of inputs) assert.equal(shape(re.exec(s, WIDE)), shape(native.exec(s)), `${p} on ${JSON.stringify(s)}`)
      })
    }
  }

  test('regsuball-style replacement walks every match, empty ones included', () => {
    const re = compileBoundedPcre('(a|b)*')
    assert.equal(
      re.replace('xabyba', WIDE, true, (m) => `[${m}]`),
      'xabyba'.replace(/(a|b)*/g, (m) => `[${m}]`),
    )
    assert.equal(
      re.replace('abx', WIDE, false, (_m, g) => `<${g[0]}>`),
      '<b>x',
    )
  })
})

describe('bounded regexes: the bounds', () => {
  test('a match past the match limit throws PCRE2_ERROR_MATCHLIMIT instead of running for ever', { timeout: 20_000 }, () => {
    const re = compileBoundedPcre('^/(a+)+$')
    assert.equal(re.test(`/${'a'.repeat(40)}`, VARNISH), true)
    assert.throws(
      () => re.test(`/${'a'.repeat(40)}b`, VARNISH),
      (err: unknown) => err instanceof RegexLimitError && err.code === 'EDGE_ERR_REGEX_MATCH_LIMIT' && err.pcre2Code === -47 && err.message === 'match limit exceeded',
    )
    // Twelve characters are within varnishd's default limit, as with PCRE2's JIT.
    assert.equal(re.test(`/${'a'.repeat(12)}b`, VARNISH), false)
  })

  test('start positions no match can begin at cost nothing (PCRE2 start bitmap): a long benign subject stays within the limit', () => {
    const re = compileBoundedPcre('(?:a|b)+x')
    assert.ok(re.risk)
    assert.equal(re.test('z'.repeat(8000), VARNISH), false)
    assert.equal(re.test(`${'z'.repeat(8000)}abx`, VARNISH), true)
  })

  test('pending choice points past the depth limit throw PCRE2_ERROR_DEPTHLIMIT', () => {
    const re = compileBoundedPcre('^(?:(a)|b)*$')
    assert.equal(re.test('abab', { matchLimit: 10_000, depthLimit: 20 }), true)
    assert.throws(() => re.test('ab'.repeat(30), { matchLimit: 10_000, depthLimit: 20 }), (err: unknown) => err instanceof RegexLimitError && err.code === 'EDGE_ERR_REGEX_DEPTH_LIMIT')
  })

  test("patterns on V8's engine are bounded by its linear-time fallback (polynomial shapes)", { timeout: 20_000 }, () => {
    const re = compileBoundedPcre('^/.*.*.*.*x$')
    assert.equal(re.risk, undefined)
    // Without the fallback flags this takes hours: 3000^4 backtracking steps.
    assert.equal(re.test(`/${'a'.repeat(3000)}`, VARNISH), false)
    assert.equal(re.test(`/${'a'.repeat(3000)}x`, VARNISH), true)
  })

  test("PCRE2's compile-time limits: nesting deeper than 250, programs too large", () => {
    assert.ok(compileBoundedPcre(`${'(?:'.repeat(250)}a${')'.repeat(250)}`))
    assert.throws(() => compileBoundedPcre(`${'('.repeat(251)}a${')'.repeat(251)}`), (err: unknown) => err instanceof RegexCompileError && err.message === 'parentheses are too deeply nested')
    assert.throws(() => compileBoundedPcre('(a{65535}){65535}'), (err: unknown) => err instanceof RegexCompileError && err.message === 'regular expression is too large')
    assert.throws(() => compileBoundedPcre('a{65536}'), RegexCompileError)
  })
})

describe("bounded regexes: PCRE's spellings", () => {
  const cases: [string, string, boolean][] = [
    ['(?P<x>ab)(?P=x)', 'abab', true],
    ['(?P<x>ab)(?P=x)', 'abac', false],
    ['a(?#comment)b', 'ab', true],
    ['\\x{41}\\x{3b1}', 'A\u03b1', true],
    ['\\e\\h', '\x1b\t', true],
    ['a\\Eb', 'ab', true],
    ['\\Qa.b\\E', 'axb', false],
    ['(?m)\\Afoo$', 'foo\nbar', true],
    ['(?m)\\Abar', 'foo\nbar', false],
    ['(?m)foo\\z', 'foo\nbar', false],
    ['^(?i:[a-c]+)$', 'AbC', true],
    ['^(?i:[a-c])$', '_', false],
    ['^(?i:[a-c])$', 'Z', false],
  ]
  for (const [p, s, want] of cases) {
    test(`${p} ${want ? 'matches' : 'does not match'} ${JSON.stringify(s)}`, () => {
      assert.equal(compileBoundedPcre(p).test(s, VARNISH), want)
    })
  }
})
