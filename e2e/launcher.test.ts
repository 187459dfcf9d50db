import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, open, readFile, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { renderConfigs } from './configs.js'
import { type Layer, missingProgram, parseLayers, programMissing } from './layers.js'
import { freePort } from './ports.js'
import { type Daemon, groupAlive, ProcessStartError } from './processes.js'
import { startStack } from './stack.js'

describe('the stack launcher', () => {
  test('--real takes any subset of tls,router,static, or all, and names a wrong one', () => {
    assert.deepEqual(parseLayers('router'), ['router'])
    assert.deepEqual(parseLayers('static, tls,static'), ['static', 'tls'])
    assert.deepEqual(parseLayers('all'), ['tls', 'router', 'static'])
    assert.throws(() => parseLayers('tls,varnish'), /unknown layer "varnish": use any of tls,router,static or all/)
  })

  test('a missing real program is one line naming the Debian package', async () => {
    assert.equal(await programMissing('/nonexistent/varnishd', 'varnish'), '/nonexistent/varnishd is not installed: apt-get install varnish')
    assert.equal(await programMissing(process.execPath, 'nodejs'), undefined)
  })

  test('the generated copies of config/ carry the ports and absolute paths, and only those change', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'edgestack-test-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const c = await renderConfigs(dir, { tls: 1001, router: 1002, static: 1003, app: 1004 })
    const stunnel = await readFile(c.stunnel, 'utf8')
    assert.match(stunnel, /^accept = 127\.0\.0\.1:1001$/m)
    assert.match(stunnel, /^connect = 127\.0\.0\.1:1002$/m)
    assert.match(stunnel, /^cert = \/.*\/\.certs\/server\.crt$/m)
    const vcl = await readFile(c.vcl, 'utf8')
    assert.match(vcl, /backend app1 \{\s+\.host = "127\.0\.0\.1";\s+\.port = "1004";/)
    assert.match(vcl, /backend nginx \{\s+\.host = "127\.0\.0\.1";\s+\.port = "1003";/)
    const nginx = await readFile(c.nginx, 'utf8')
    assert.match(nginx, /listen 127\.0\.0\.1:1003;/)
    assert.match(nginx, /server 127\.0\.0\.1:1004;/)
    assert.match(nginx, /root \/.*\/packages\/demo-app\/public;/)
    const original = await readFile(new URL('../../config/default.vcl', import.meta.url), 'utf8')
    assert.equal(vcl.split('\n').length, original.split('\n').length)
  })

  test('with three app instances, each gets a backend and an add_backend line in default.vcl and a server line in nginx.conf', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'edgestack-test-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const c = await renderConfigs(dir, { tls: 1001, router: 1002, static: 1003, app: 1004 }, [1004, 1010, 1020])
    const vcl = await readFile(c.vcl, 'utf8')
    for (const [i, port] of [1004, 1010, 1020].entries()) {
      assert.match(vcl, new RegExp(`backend app${i + 1} \\{\\s+\\.host = "127\\.0\\.0\\.1";\\s+\\.port = "${port}";\\s+\\.probe = app_health;\\s+\\}`))
      assert.match(vcl, new RegExp(`^    app\\.add_backend\\(app${i + 1}, 1\\.0\\);$`, 'm'))
    }
    assert.equal(vcl.match(/^backend app\d/gm)?.length, 3)
    const nginx = await readFile(c.nginx, 'utf8')
    assert.deepEqual(nginx.match(/^\s*server 127\.0\.0\.1:\d+;$/gm)?.map((l) => l.trim()), [
      'server 127.0.0.1:1004;',
      'server 127.0.0.1:1010;',
      'server 127.0.0.1:1020;',
    ])
  })

  for (const [layer, check] of [
    ['router', ['/usr/sbin/varnishd', ['-C', '-n', 'N', '-f', 'VCL']]],
    ['static', ['/usr/sbin/nginx', ['-t', '-p', 'DIR/', '-c', 'NGINX']]],
  ] as const) {
    test(`the generated ${layer} config passes the real program's own check`, async (t) => {
      const why = await missingProgram(layer)
      if (why) return t.skip(why)
      const dir = await mkdtemp(join(tmpdir(), 'edgestack-test-'))
      t.after(() => rm(dir, { recursive: true, force: true }))
      const c = await renderConfigs(dir, { tls: 1001, router: 1002, static: 1003, app: 1004 })
      const subst: Record<string, string> = { N: join(dir, 'varnish'), VCL: c.vcl, 'DIR/': `${dir}/`, NGINX: c.nginx }
      // Output to a file: nginx -t opens /dev/stdout, which a socket pair (Node's pipes) refuses.
      const log = await open(join(dir, 'check.log'), 'w+')
      t.after(() => log.close())
      const child = spawn(check[0], check[1].map((a) => subst[a] ?? a), { stdio: ['ignore', log.fd, log.fd], timeout: 30_000 })
      const [code] = await once(child, 'exit')
      assert.equal(code, 0, await readFile(join(dir, 'check.log'), 'utf8'))
    })
  }

  const clash: [Layer, RegExp][] = [
    ['tls', /Address already in use/],
    ['router', /Could not get socket 127\.0\.0\.1:\d+: Address already in use/],
    ['static', /bind\(\) to 127\.0\.0\.1:\d+ failed \(98: Address already in use\)/],
  ]
  for (const [layer, own] of clash) {
    test(`a real ${layer} that cannot start: its own words, and nothing left running`, async (t) => {
      const why = await missingProgram(layer)
      if (why) return t.skip(why)
      const blocker = net.createServer((s) => s.destroy())
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
      t.after(() => blocker.close())
      const taken = (blocker.address() as net.AddressInfo).port
      const ports = { tls: await freePort(), router: await freePort(), static: await freePort(), app: await freePort(), [layer]: taken }
      const started: Daemon[] = []
      const err = await startStack({ real: [layer], ports, onStart: (d) => started.push(d) }).then(
        () => assert.fail('the stack started on a taken port'),
        (e: unknown) => e,
      )
      assert.ok(err instanceof ProcessStartError, String(err))
      assert.match(err.message, new RegExp(`^${layer} `))
      assert.match(err.message, own)
      assert.equal(groupAlive(err.pgid), false, `${layer} is still running`)
      assert.ok(started.length > 0)
      for (const d of started) assert.equal(d.alive(), false, `${d.name} is still running`)
    })
  }
})
