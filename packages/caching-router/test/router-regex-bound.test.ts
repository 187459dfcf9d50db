import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { adminCommand } from '../src/admin-client.js'
import { type RawResponse, rawExchange } from './raw-client.js'
import { checkVclFile } from '../src/vcl/index.js'
import { startVclRouter } from './router-vcl-harness.js'
import { startVarnishd, VARNISHADM, varnishInstalled } from './vcl-varnishd.js'

/**
 * Every VCL regex match is bounded (issue 15): `^/(a+)+$` against `/` + 40 `a` + `b` needs
 * 2^40 steps of a backtracking engine. varnishd stops at pcre2_match_limit and fails the
 * request with 503 "VCL failed"; so must we, without holding up anyone else.
 */
const VCL = `vcl 4.1;
backend default { .host = "127.0.0.1"; .port = "9"; }
sub vcl_recv {
  if (req.url ~ "^/(a+)+$") { return (synth(200, "matched")); }
  if (req.url ~ "^/r/") { return (synth(202, regsuball(req.url, "^/r/((a|aa)+)+$", "[\\1]"))); }
  if (req.url ~ "^/n/" && req.url !~ "^/n/(a|aa)+$") { return (synth(203, "not")); }
  return (synth(404, "none"));
}
`

const a = (n: number) => 'a'.repeat(n)
const PATHOLOGICAL = `/${a(40)}b`

function request(port: number, path: string, count = 1): Promise<RawResponse[]> {
  const one = `GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`
  return rawExchange(port, one.repeat(count), { closeAfter: count }).then((r) => r.responses)
}

/** What a client sees of each path, one connection each, asked one after the other. */
async function statuses(port: number, paths: readonly string[]): Promise<string[]> {
  const out: string[] = []
  for (const p of paths) {
    const [r] = await request(port, p)
    out.push(`${p.length > 20 ? `${p.slice(0, 12)}..(${p.length})` : p} ${r?.status} ${r?.reason}`)
  }
  return out
}

describe('caching-router: bounded VCL regexes', () => {
  test('a pathological URL fails its own request with 503 VCL failed while a concurrent request is answered', { timeout: 30_000 }, async (t) => {
    const r = await startVclRouter(VCL)
    t.after(() => r.stop())
    // Five pathological requests pipelined on one connection, a plain one on another started
    // right after: both connections complete (an unbounded match would hold the loop for ever).
    const slow = request(r.port, PATHOLOGICAL, 5)
    const fast = request(r.port, `/${a(40)}`)
    const [bad, good] = await Promise.all([slow, fast])
    assert.deepEqual(
      bad.map((x) => `${x.status} ${x.reason}`),
      Array(5).fill('503 VCL failed'),
    )
    assert.equal(good[0]?.status, 200)
    assert.equal(good[0]?.reason, 'matched')
  })

  test('regsuball and !~ are bounded the same way; short inputs still match', { timeout: 30_000 }, async (t) => {
    const r = await startVclRouter(VCL)
    t.after(() => r.stop())
    assert.deepEqual(await statuses(r.port, [`/r/${a(6)}`, `/r/${a(40)}b`, `/n/${a(3)}`, `/n/${a(40)}b`, '/n/b']), [
      '/r/aaaaaa 202 [aaaaaa]',
      '/r/aaaaaaaaa..(44) 503 VCL failed',
      '/n/aaa 404 none',
      '/n/aaaaaaaaa..(44) 503 VCL failed',
      '/n/b 203 not',
    ])
  })

  test('pcre2_match_limit (param.set) decides whether a costly match fails', { timeout: 30_000 }, async (t) => {
    const r = await startVclRouter(VCL)
    t.after(() => r.stop())
    const mid = `/${a(16)}b`
    const short = `/${a(6)}b`
    assert.deepEqual(await statuses(r.port, [mid, short]), [`${mid} 503 VCL failed`, `${short} 404 none`])
    assert.equal((await adminCommand(r.admin, undefined, 'param.set pcre2_match_limit 10000000')).status, 200)
    assert.deepEqual(await statuses(r.port, [mid, short]), [`${mid} 404 none`, `${short} 404 none`])
    assert.equal((await adminCommand(r.admin, undefined, 'param.set pcre2_match_limit 20')).status, 200)
    assert.deepEqual(await statuses(r.port, [mid, short]), [`${mid} 503 VCL failed`, `${short} 503 VCL failed`])
    const bad = await adminCommand(r.admin, undefined, 'param.set pcre2_match_limit 0')
    assert.equal(bad.status, 106)
    assert.match(bad.body, /^Must be at least 1/)
  })

  test('pcre2_depth_limit applies once pcre2_jit_compilation is off, as PCRE2 JIT ignores it', { timeout: 30_000 }, async (t) => {
    const r = await startVclRouter(VCL)
    t.after(() => r.stop())
    const path = `/r/${a(8)}`
    assert.deepEqual(await statuses(r.port, [path]), [`${path} 202 [aaaaaaaa]`])
    assert.equal((await adminCommand(r.admin, undefined, 'param.set pcre2_depth_limit 2')).status, 200)
    assert.deepEqual(await statuses(r.port, [path]), [`${path} 202 [aaaaaaaa]`])
    assert.equal((await adminCommand(r.admin, undefined, 'param.set pcre2_jit_compilation off')).status, 200)
    assert.deepEqual(await statuses(r.port, [path]), [`${path} 503 VCL failed`])
    assert.match((await adminCommand(r.admin, undefined, 'param.show pcre2_jit_compilation')).body, /Value is: off \[bool\]/)
  })

  test('differential: varnishd answers the same statuses on the same VCL and limits', { timeout: 90_000 }, async (t) => {
    if (!varnishInstalled) {
      if (process.env.CI) assert.fail('varnishd is not installed (apt-get install varnish): the differential cannot run')
      return t.skip('varnishd is not installed at /usr/sbin/varnishd: differential NOT run')
    }
    const paths = [`/${a(40)}`, PATHOLOGICAL, `/${a(6)}b`, `/${a(16)}b`, `/r/${a(6)}`, `/r/${a(40)}b`, `/n/${a(3)}`, `/n/${a(40)}b`]
    const theirs = await startVarnishd(VCL)
    t.after(() => theirs.stop())
    const ours = await startVclRouter(VCL)
    t.after(() => ours.stop())
    assert.deepEqual(await statuses(ours.port, paths), await statuses(theirs.port, paths))
    // Raised limit: the 16-character case completes (no match) on both.
    await new Promise<void>((resolve, reject) => {
      execFile(VARNISHADM, ['-n', theirs.workdir, 'param.set', 'pcre2_match_limit', '10000000'], (err) => (err ? reject(err) : resolve()))
    })
    await adminCommand(ours.admin, undefined, 'param.set pcre2_match_limit 10000000')
    const raised = [`/${a(16)}b`, `/${a(6)}b`]
    assert.deepEqual(await statuses(ours.port, raised), await statuses(theirs.port, raised))
  })

  test('a pattern that can backtrack super-linearly is a warning at load (-C, vcl.load), with its position', { timeout: 30_000 }, async (t) => {
    const r = await startVclRouter(VCL)
    t.after(() => r.stop())
    const described = (await checkVclFile(join(r.dir, 'boot.vcl'))).describe()
    const warnings = described.split('\n').filter((l) => l.startsWith('warning: '))
    assert.deepEqual(warnings, [
      `warning: ${join(r.dir, 'boot.vcl')}:4:17: regex "^/(a+)+$" can backtrack super-linearly (nested quantifier); each match stops at pcre2_match_limit`,
      `warning: ${join(r.dir, 'boot.vcl')}:5:65: regex "^/r/((a|aa)+)+$" can backtrack super-linearly (nested quantifier); each match stops at pcre2_match_limit`,
      `warning: ${join(r.dir, 'boot.vcl')}:6:38: regex "^/n/(a|aa)+$" can backtrack super-linearly (alternation under a quantifier); each match stops at pcre2_match_limit`,
    ])
    const plain = join(r.dir, 'plain.vcl')
    await writeFile(plain, 'vcl 4.1;\nbackend default { .host = "127.0.0.1"; .port = "9"; }\nsub vcl_recv { if (req.url ~ "\\.(css|js)$" || req.http.upgrade ~ "(?i)websocket") { return (pass); } }\n')
    const loaded = await adminCommand(r.admin, undefined, `vcl.load plain ${plain}`)
    assert.equal(loaded.status, 200)
    assert.equal(loaded.body, 'VCL compiled.\n')
    const risky = await adminCommand(r.admin, undefined, `vcl.load again ${join(r.dir, 'boot.vcl')}`)
    assert.equal(risky.status, 200)
    assert.match(risky.body, /^WARNING: .*boot\.vcl:4:17: regex "\^\/\(a\+\)\+\$" can backtrack super-linearly \(nested quantifier\)/)
    assert.match(risky.body, /VCL compiled\.\n$/)
  })
})
