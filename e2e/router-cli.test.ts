import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, test } from 'node:test'
import { runCli, startDaemon } from './processes.js'

describe('caching-router: varnishd\'s command line', () => {
  const usage: Array<[string, string[], RegExp]> = [
    ['an unknown parameter', ['-b', '127.0.0.1:1', '-p', 'no_such=1'], /Unknown parameter "no_such"/],
    ['a bad parameter value', ['-b', '127.0.0.1:1', '-p', 'default_ttl=soon'], /Invalid number \(soon\)\n\n\(attempting to set param 'default_ttl' to 'soon'\)/],
    ['a parameter under its minimum', ['-b', '127.0.0.1:1', '-p', 'http_req_hdr_len=1'], /Must be at least 40/],
    ['-p without =', ['-b', '127.0.0.1:1', '-p', 'default_ttl'], /expected name=value/],
    ['-f with -b', ['-f', '/etc/varnish/default.vcl', '-b', '127.0.0.1:1'], /Only one of -b or -f/],
    ['-C without -f', ['-C'], /-C needs -f FILE/],
    ['another storage', ['-b', '127.0.0.1:1', '-s', 'file,/tmp/x,1G'], /only the malloc storage/],
    ['a bad size', ['-b', '127.0.0.1:1', '-s', 'malloc,lots'], /invalid size "lots"/],
    ['an unknown listen protocol', ['-b', '127.0.0.1:1', '-a', ':0,SPDY'], /Unknown protocol 'SPDY'/],
    ['an unknown flag', ['-Z'], /Unknown option '-Z'/],
  ]
  for (const [name, args, message] of usage) {
    test(`${name}: exit 2 and one clear message`, async () => {
      const r = await runCli('caching-router', args)
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, message)
      assert.match(r.stderr, /^caching-router: /)
    })
  }

  test('--help documents varnishd\'s flags and the edgestack extensions', async () => {
    const r = await runCli('caching-router', ['--help'])
    assert.equal(r.code, 0)
    for (const flag of ['-a ADDR[,PROXY]', '-b HOST:PORT', '-s malloc,SIZE', '-p NAME=VALUE', '-T ADDR', '-S FILE', '--static-backend', '--app-backend']) {
      assert.ok(r.stdout.includes(flag), flag)
    }
    assert.match(r.stdout, /edgestack extensions/)
  })

  test('-F -n -P -s -p and two -a: starts, logs each listener, writes the pid file', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'router-cli-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const pidFile = join(dir, 'varnishd.pid')
    const d = await startDaemon('caching-router', [
      '-F',
      '-n',
      dir,
      '-P',
      pidFile,
      '-a',
      '127.0.0.1:0',
      '-a',
      'second=127.0.0.1:0,PROXY',
      '-b',
      '127.0.0.1:1',
      '-s',
      'malloc,1M',
      '-p',
      'default_ttl=30s',
      '-p',
      'timeout_idle=2',
    ])
    t.after(() => d.stop())
    // The storage line is the last start-up line; the listener lines may arrive in an earlier chunk.
    for (let i = 0; i < 500 && !/storage \d+ bytes/.test(d.output()); i++) await new Promise((r) => setTimeout(r, 20))
    assert.match(d.output(), /listening on 127\.0\.0\.1:\d+ \(PROXY\)/)
    assert.match(d.output(), /storage 1048576 bytes/)
    for (let i = 0; i < 100; i++) {
      const pid = await readFile(pidFile, 'utf8').catch(() => '')
      if (pid) {
        assert.equal(pid.trim(), String(d.child.pid))
        return
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    assert.fail('no pid file')
  })

  test('caching-router stat reads the counters over -T, like varnishstat -1', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'router-stat-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const secret = join(dir, 'secret')
    await writeFile(secret, 'stat secret\n')
    const d = await startDaemon('caching-router', ['-a', '127.0.0.1:0', '-b', '127.0.0.1:1', '-T', '127.0.0.1:0', '-S', secret])
    t.after(() => d.stop())
    for (let i = 0; i < 500 && !/admin CLI on/.test(d.output()); i++) await new Promise((r) => setTimeout(r, 20))
    const admin = /admin CLI on (127\.0\.0\.1:\d+)/.exec(d.output())?.[1]
    assert.ok(admin, d.output())
    const r = await runCli('caching-router', ['stat', '-T', admin, '-S', secret])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^MAIN\.uptime\s+\d+/m)
    assert.match(r.stdout, /^MAIN\.cache_hit\s+0\s/m)
    assert.match(r.stdout, /^MAIN\.n_lru_nuked\s+0\s/m)
    const wrong = join(dir, 'wrong')
    await writeFile(wrong, 'nope\n')
    const refused = await runCli('caching-router', ['stat', '-T', admin, '-S', wrong])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /authentication refused/)
  })

  test('-C -f and -C -b check a VCL like varnishd -C: the article\'s files pass, a bad one exits 2 with line, column and caret', async (t) => {
    for (const file of ['default.vcl', 'default-3.0.vcl']) {
      const ok = await runCli('caching-router', ['-C', '-f', fileURLToPath(new URL(`../../config/${file}`, import.meta.url))])
      assert.equal(ok.code, 0, ok.stderr)
      // default.vcl names its first app instance app1 (one per instance, behind a director).
      assert.match(ok.stdout, /backend (node|app1) 127\.0\.0\.1:3000 \(default\)/)
    }
    // -b is VCL too, as varnishd -C -b compiles it.
    const b = await runCli('caching-router', ['-C', '-b', '127.0.0.1:3000'])
    assert.equal(b.code, 0, b.stderr)
    assert.match(b.stdout, /backend default 127\.0\.0\.1:3000 \(default\)/)
    const dir = await mkdtemp(join(tmpdir(), 'router-vcl-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const bad = join(dir, 'bad.vcl')
    await writeFile(bad, 'vcl 4.1;\nbackend b { .host = "127.0.0.1"; .port = "9"; }\nsub vcl_recv { set req.nope = 1; }\n')
    const checked = await runCli('caching-router', ['-C', '-f', bad])
    assert.equal(checked.code, 2)
    assert.match(checked.stderr, /bad\.vcl:3:20: Symbol not found: 'req\.nope'\nsub vcl_recv \{ set req\.nope = 1; \}\n {19}\^/)
    // Started with it: the same message, exit 2, and no port bound.
    const started = await runCli('caching-router', ['-f', bad, '-a', '127.0.0.1:0'])
    assert.equal(started.code, 2)
    assert.match(started.stderr, /bad\.vcl:3:20: Symbol not found/)
    assert.doesNotMatch(started.stdout + started.stderr, /listening on/)
  })

  test('an unreadable -S file stops start-up before any port is bound', async () => {
    const r = await runCli('caching-router', ['-a', '127.0.0.1:0', '-b', '127.0.0.1:1', '-T', '127.0.0.1:0', '-S', '/nonexistent/secret'])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^caching-router: -S \/nonexistent\/secret: ENOENT/)
    assert.doesNotMatch(r.stdout, /listening on/)
  })
})
