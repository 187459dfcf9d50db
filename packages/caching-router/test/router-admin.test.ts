import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { promisify } from 'node:util'
import { createLogger } from '@edgestack/common'
import { adminCommand } from '../src/admin-client.js'
import { authResponse } from '../src/mgt/cli-session.js'
import { backendVcl } from '../src/config/flags-vcl.js'
import { createCachingRouter } from '../src/server.js'
import { get, startOrigin } from './router-harness.js'

const run = promisify(execFile)
const VARNISHADM = '/usr/bin/varnishadm'
const hasVarnishadm = await access(VARNISHADM).then(
  () => true,
  () => false,
)

describe('caching-router admin CLI (-T/-S)', () => {
  test('the -S answer is varnishd\'s (the worked example of varnish-cli(7))', () => {
    const answer = authResponse('ixslvvxrgkjptxmcgnnsdxsvdmvfympg', Buffer.from('foo\n'))
    assert.equal(answer, '455ce847f0073c7ab3b1465f74507b75d3dc064c1e7de3b71e00de9092fdc89a')
  })

  test('ban, ban.list, param.set, stats through our client; a wrong secret is refused', async (t) => {
    const origin = await startOrigin(t, (req, res, n) => {
      res.setHeader('Cache-Control', 'max-age=60')
      res.end(`${req.url} ${n}`)
    })
    const dir = await mkdtemp(join(tmpdir(), 'router-admin-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const secret = Buffer.from('a secret\n')
    const secretFile = join(dir, 'secret')
    await writeFile(secretFile, secret)
    const router = createCachingRouter(
      {
        listen: [{ address: { host: '127.0.0.1', port: 0 }, proxy: false }],
        vcl: { kind: 'text', name: '<-b argument>', text: backendVcl(origin.address) },
        storageBytes: 1 << 20,
        params: [],
        identity: undefined,
        logHandling: false,
        admin: { address: { host: '127.0.0.1', port: 0 }, secretFile },
      },
      createLogger({ name: 'caching-router', level: 'error' }),
      { write: () => {}, close: async () => {} },
    )
    const [http] = await router.listen()
    t.after(() => router.close({ drainTimeoutMs: 200 }))
    const admin = router.adminAddress
    assert.ok(admin && http)
    const url = `http://127.0.0.1:${http.port}`
    await get(`${url}/keep`)
    await get(`${url}/drop/1`)
    assert.equal((await adminCommand(admin, secret, 'ping')).body.split(' ')[0], 'PONG')
    // varnishd's framing (`%-3d %-8d\n`, body, newline), read off the socket: the challenge.
    const challenge = await new Promise<string>((resolve, reject) => {
      const s = net.connect(admin.port, admin.host)
      s.setEncoding('latin1')
      let text = ''
      s.on('data', (c: string) => {
        text += c
        if (text.endsWith('Authentication required.\n\n')) s.destroy()
      })
      s.on('close', () => resolve(text))
      s.on('error', reject)
    })
    assert.match(challenge, /^107 59 {6}\n[a-z]{32}\n\nAuthentication required\.\n\n$/)
    // varnish-cli(7) quoting: a quoted word keeps its spaces and \" is a quote; an open quote is refused.
    assert.equal((await adminCommand(admin, secret, 'ban req.url ~ "^/a b\\"c"')).status, 200)
    assert.match((await adminCommand(admin, secret, 'ban.list')).body, /req\.url ~ \^\/a b"c/)
    // -b is VCL like any other, as in varnishd: loaded as boot, shown, listed.
    assert.equal((await adminCommand(admin, secret, 'vcl.show boot')).body, backendVcl(origin.address))
    assert.match((await adminCommand(admin, secret, 'vcl.list')).body, /^active\s+auto\s+warm\s+\d+\s+boot\n$/)
    assert.deepEqual(await adminCommand(admin, secret, 'ban "open'), { status: 100, body: 'Syntax Error: bad quoting\n' })
    assert.equal((await adminCommand(admin, secret, 'ban req.url ~ ^/drop')).status, 200)
    assert.match((await adminCommand(admin, secret, 'ban.list')).body, /req\.url ~ \^\/drop/)
    assert.equal((await get(`${url}/keep`)).body, '/keep 1')
    assert.equal((await get(`${url}/drop/1`)).body, '/drop/1 3')
    assert.equal((await adminCommand(admin, secret, 'ban obj.status == 200 && req.http.host ~ (?i)NOPE')).status, 200)
    assert.equal((await get(`${url}/keep`)).body, '/keep 1')
    assert.equal((await adminCommand(admin, secret, 'ban req.nope == 1')).status, 106)
    assert.equal((await adminCommand(admin, secret, 'param.set default_ttl 5')).status, 200)
    assert.equal(router.params.get('default_ttl'), 5)
    assert.equal((await adminCommand(admin, secret, 'param.set default_ttl banana')).status, 106)
    assert.equal((await adminCommand(admin, secret, 'frobnicate')).status, 101)
    assert.match((await adminCommand(admin, secret, 'stats')).body, /^MAIN\.cache_hit\s+2\s/m)
    // Bans every stored object has met are dropped as new ones come: the list stays bounded.
    for (let i = 0; i < 20; i++) await adminCommand(admin, secret, `ban req.url == /nothing/${i}`)
    await get(`${url}/keep`)
    await get(`${url}/drop/1`)
    await adminCommand(admin, secret, 'ban req.url == /last')
    assert.ok(router.counters.bans <= 2, `bans: ${router.counters.bans}`)
    assert.equal((await get(`${url}/keep`)).body, '/keep 1')
    await assert.rejects(adminCommand(admin, Buffer.from('wrong\n'), 'ping'), /authentication refused/)
    await assert.rejects(adminCommand(admin, undefined, 'ping'), /authentication refused/)
  })

  test('Debian\'s varnishadm drives it', { skip: hasVarnishadm ? false : `${VARNISHADM} not installed` }, async (t) => {
    const origin = await startOrigin(t, (_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60')
      res.end('x')
    })
    const dir = await mkdtemp(join(tmpdir(), 'router-varnishadm-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const secretFile = join(dir, 'secret')
    await writeFile(secretFile, 'shared secret\n')
    const router = createCachingRouter(
      {
        listen: [{ address: { host: '127.0.0.1', port: 0 }, proxy: false }],
        vcl: { kind: 'text', name: '<-b argument>', text: backendVcl(origin.address) },
        storageBytes: 1 << 20,
        params: [],
        identity: undefined,
        logHandling: false,
        admin: { address: { host: '127.0.0.1', port: 0 }, secretFile },
      },
      createLogger({ name: 'caching-router', level: 'error' }),
      { write: () => {}, close: async () => {} },
    )
    await router.listen()
    t.after(() => router.close({ drainTimeoutMs: 200 }))
    const target = `127.0.0.1:${router.adminAddress?.port}`
    const adm = (...args: string[]) => run(VARNISHADM, ['-T', target, '-S', secretFile, ...args], { timeout: 10_000 })
    assert.match((await adm('ping')).stdout, /^PONG \d+ 1\.0/)
    assert.match((await adm('status')).stdout, /Child in state running/)
    await adm('ban', 'req.url', '~', '^/x')
    assert.match((await adm('ban.list')).stdout, /req\.url ~ \^\/x/)
    await adm('param.set', 'default_grace', '30')
    assert.match((await adm('param.show', 'default_grace')).stdout, /Value is: 30\.000 \[seconds\]\n/)
    await assert.rejects(adm('param.set', 'no_such_param', '1'), (err: { stdout: string }) => /Unknown parameter/.test(err.stdout))
    const wrong = join(dir, 'wrong')
    await writeFile(wrong, 'nope\n')
    await assert.rejects(run(VARNISHADM, ['-T', target, '-S', wrong, 'ping'], { timeout: 10_000 }))
  })
})
