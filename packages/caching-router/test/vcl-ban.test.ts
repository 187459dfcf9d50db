import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { describe, test } from 'node:test'
import { BanError, type BanSubject, parseBan, parseBanString } from '../src/vcl/index.js'
import { type RunningVarnishd, startVarnishd, VARNISHADM, varnishInstalled } from './vcl-varnishd.js'

// Ban expressions: what VCL's ban() and the admin `ban` command share.

function subject(over: Partial<{ url: string; req: Record<string, string>; obj: Record<string, string>; status: number; ttl: number }> = {}): BanSubject {
  const req = new Map(Object.entries(over.req ?? {}).map(([k, v]) => [k.toLowerCase(), v]))
  const obj = new Map(Object.entries(over.obj ?? {}).map(([k, v]) => [k.toLowerCase(), v]))
  return {
    url: over.url ?? '/a/b',
    reqHeader: (n) => req.get(n.toLowerCase()),
    objHeader: (n) => obj.get(n.toLowerCase()),
    status: over.status ?? 200,
    ttl: over.ttl ?? 60,
    age: 5,
    grace: 10,
    keep: 0,
  }
}

describe('ban expressions', () => {
  test('fields, operators and && chains', () => {
    const s = subject({ url: '/news/1', req: { Host: 'example.com' }, obj: { 'X-Tag': 'Sport,News' }, status: 200, ttl: 3600 })
    const yes = [
      'req.url ~ ^/news/',
      'req.url == /news/1',
      'req.url != /other',
      'req.http.host == example.com',
      'obj.http.x-tag ~ (?i)news',
      'obj.http.x-missing !~ x',
      'obj.http.x-missing != x',
      'obj.status == 200',
      'obj.status ~ ^2..$',
      'obj.ttl > 1h && obj.ttl <= 1h',
    ]
    for (const e of yes.slice(0, -1)) assert.equal(parseBanString(e).matches(s), true, e)
    assert.equal(parseBanString('obj.ttl > 59m && obj.ttl <= 1h').matches(s), true)
    for (const e of ['req.url ~ ^/sport/', 'obj.http.x-missing ~ .*', 'obj.http.x-missing == x', 'obj.status != 200', 'req.url ~ news && obj.status == 404']) {
      assert.equal(parseBanString(e).matches(s), false, e)
    }
    assert.equal(parseBan(['req.url', '==', '/a b']).matches(subject({ url: '/a b' })), true)
    assert.equal(parseBanString('req.url == "/a b"').matches(subject({ url: '/a b' })), true)
    assert.equal(parseBanString('req.url ~ x').usesReq, true)
    assert.equal(parseBanString('obj.http.x ~ x').usesReq, false)
    assert.equal(parseBan(['req.url', '~', '/x', '&&', 'obj.status', '==', '200']).text, 'req.url ~ /x && obj.status == 200')
  })

  test('errors in varnishd wording; stricter where varnishd stores bans that can never match', () => {
    const cases: [string[], string][] = [
      [['req.url'], 'Too few parameters'],
      [['req.url', '~', 'a', 'b'], 'Wrong number of arguments'],
      [['req.foo', '==', 'x'], 'Unknown or unsupported field "req.foo"'],
      [['req.url', '>', 'x'], 'expected conditional (==, !=, ~ or !~) got ">"'],
      [['req.url', '~', 'a', '||', 'obj.status', '!=', '404'], 'Found "||" expected &&'],
      [['obj.grace', '==', '3'], 'expected duration <n.nn>[ms|s|m|h|d|w|y] got "3"'],
      [['obj.status', '==', 'abc'], 'expected an integer status got "abc"'],
      [['req.http.', '==', 'x'], 'Missing header name: "req.http."'],
      [['req.url', '~', 'a++'], 'Regex compile error: possessive quantifiers are not supported'],
    ]
    for (const [args, message] of cases) assert.throws(() => parseBan(args), (err: unknown) => err instanceof BanError && err.message === message, args.join(' '))
    assert.throws(() => parseBanString('req.url == "open'), { message: 'Unterminated quoted string' })
  })
})

describe('ban differential: parseBan vs varnishadm ban', { skip: varnishInstalled ? false : 'varnishd/varnishadm not installed' }, () => {
  let varnishd: RunningVarnishd | undefined
  const adm = (args: string[]) =>
    new Promise<{ ok: boolean; out: string }>((resolve) => {
      execFile(VARNISHADM, ['-n', varnishd?.workdir ?? '', 'ban', ...args], { timeout: 10_000 }, (err, stdout) => resolve({ ok: !err, out: stdout.trim() }))
    })
  // varnishadm sends its arguments unquoted, so an argument with a blank cannot be compared here.
  // varnishd accepts these and stores bans that never match; we refuse them on purpose.
  const STRICTER = new Set(['obj.status == abc', 'req.http. == x'])
  const CASES = [
    ['req.url', '~', '/foo'],
    ['obj.http.x-tag', '~', '(?i)abc'],
    ['req.foo', '==', 'x'],
    ['obj.status', '==', '200'],
    ['obj.status', '==', 'abc'],
    ['obj.status', '>', '200'],
    ['obj.ttl', '>', '1h'],
    ['req.http.', '==', 'x'],
    ['req.url', '~', '('],
    ['req.url', '~', 'a', '&&', 'obj.status', '!=', '404'],
    ['req.url', '~', 'a', '||', 'obj.status', '!=', '404'],
    ['req.url', '~', 'a', '&&'],
    ['obj.age', '<', '1m'],
    ['obj.grace', '==', '3'],
    ['req.url', '=', 'a'],
    ['obj.status', '~', '2..'],
    ['obj.http', '==', 'x'],
    ['req.url ~ a'],
  ]

  test('start varnishd', async () => {
    varnishd = await startVarnishd('vcl 4.1;\nbackend app { .host = "127.0.0.1"; .port = "9"; }\n')
  })

  for (const args of CASES) {
    test(`ban ${args.join(' ')}`, async () => {
      const theirs = await adm(args)
      let ours: { ok: boolean; out: string }
      try {
        parseBan(args)
        ours = { ok: true, out: '' }
      } catch (err) {
        assert.ok(err instanceof BanError)
        ours = { ok: false, out: err.message }
      }
      if (STRICTER.has(args.join(' '))) {
        assert.deepEqual([ours.ok, theirs.ok], [false, true])
        return
      }
      assert.equal(ours.ok, theirs.ok, `varnishadm: ${theirs.out}\nours: ${ours.out}`)
      // Same first line, except regex engines word their errors differently.
      if (!ours.ok && !ours.out.startsWith('Regex')) assert.equal(theirs.out.split('\n')[0], ours.out)
    })
  }

  test('stop varnishd', async () => {
    await varnishd?.stop()
  })
})
