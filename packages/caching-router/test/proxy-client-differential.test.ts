import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { rawExchange } from './raw-client.js'
import { startVclRouter, type VclRouter } from './router-vcl-harness.js'
import { type RunningVarnishd, skipWithoutVarnishd, startVarnishd } from './vcl-varnishd.js'

// The client address through a PROXY listener (`-a ADDR,PROXY`), against varnishd 7.1 on the
// same VCL: client.ip, its port, client.identity and server.ip come from the PROXY header,
// remote.ip and local.ip stay the connection's own, and a hash director keyed by
// client.identity (or the shard director by client.ip) picks by the header's address, so the
// browser behind the terminator is what sticks. PROXY v1 written by hand, then the real
// stunnel with `protocol = proxy` in front of each.

const NAMES = ['b0', 'b1', 'b2', 'b3']
const FIX = fileURLToPath(new URL('../../../tls-terminator/test/fixtures/', import.meta.url))
const STUNNEL = '/usr/bin/stunnel'
// stunnel cannot listen on port 0: ports from this suite's range.
const STUNNEL_PORTS = [23411, 23412]

const vcl = (ports: number[]) => `vcl 4.1;
import std;
import directors;
${NAMES.map((n, i) => `backend ${n} { .host = "127.0.0.1"; .port = "${ports[i]}"; }`).join('\n')}

sub vcl_init {
    new h = directors.hash();
    new s = directors.shard();
${NAMES.map((n) => `    h.add_backend(${n});\n    s.add_backend(${n});`).join('\n')}
}

sub vcl_recv {
    if (req.url ~ "^/identity") {
        set req.backend_hint = h.backend(client.identity);
    } elsif (req.url ~ "^/shard-ip") {
        set req.backend_hint = s.backend(by = KEY, key = s.key(client.ip));
    } elsif (req.url ~ "^/set-identity") {
        set client.identity = req.http.X-Session;
        set req.backend_hint = h.backend(client.identity);
    }
    return (pass);
}

sub vcl_deliver {
    set resp.http.X-Client = client.ip + " " + std.port(client.ip);
    set resp.http.X-Identity = client.identity;
    set resp.http.X-Server = server.ip + " " + std.port(server.ip);
    set resp.http.X-Remote = remote.ip;
    set resp.http.X-Local = local.ip;
}
`

function origin(name: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'X-Backend': name, 'X-Forwarded': String(req.headers['x-forwarded-for']) })
    res.end(name)
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

const FIELDS = ['x-backend', 'x-client', 'x-identity', 'x-server', 'x-remote', 'x-local', 'x-forwarded'] as const

async function viaProxyV1(port: number, source: string, srcPort: number, url: string, extra = ''): Promise<Record<string, string>> {
  const family = source.includes(':') ? 'TCP6' : 'TCP4'
  const dest = family === 'TCP6' ? '2001:db8::1' : '192.0.2.1'
  const head = `PROXY ${family} ${source} ${dest} ${srcPort} 443\r\n`
  const { responses } = await rawExchange(port, `${head}GET ${url} HTTP/1.1\r\nHost: example.com\r\n${extra}Connection: close\r\n\r\n`)
  const r = responses.at(-1)
  return Object.fromEntries(FIELDS.map((f) => [f, r?.headers[f] ?? `status ${r?.status}`]))
}

const stunnelInstalled = await access(STUNNEL).then(
  () => true,
  () => false,
)

describe('client address through PROXY: caching-router vs varnishd', { skip: skipWithoutVarnishd, concurrency: 1 }, () => {
  const origins: http.Server[] = []
  let ours: VclRouter
  let theirs: RunningVarnishd
  const proxyPorts: Record<string, number> = {}

  before(async () => {
    for (const n of NAMES) origins.push(await origin(n))
    const text = vcl(origins.map((o) => (o.address() as AddressInfo).port))
    ours = await startVclRouter(text, 'boot.vcl', {}, { proxyListener: true })
    theirs = await startVarnishd(text, ['-a', '127.0.0.1:0,PROXY'])
    proxyPorts['caching-router'] = ours.ports[1] as number
    proxyPorts.varnishd = theirs.ports[1] as number
  })

  after(async () => {
    await ours?.stop()
    await theirs?.stop()
    for (const o of origins) o.close()
  })

  test('PROXY v1 by hand: the header addresses in VCL, and directors hashing them', async () => {
    const cases: [string, number, string, string?][] = []
    for (let i = 0; i < 40; i++) cases.push([`203.0.113.${i + 1}`, 40000 + i, '/identity'])
    for (let i = 0; i < 30; i++) cases.push([`198.51.100.${i * 7 + 1}`, 50000 + i, '/shard-ip'])
    for (let i = 0; i < 10; i++) cases.push([`2001:db8::${(i + 1).toString(16)}`, 60000 + i, '/identity'])
    for (let i = 0; i < 10; i++) cases.push([`203.0.113.9`, 61000 + i, '/set-identity', `X-Session: s-${i}\r\n`])
    const seen: Record<string, Record<string, string>[]> = {}
    for (const [name, port] of Object.entries(proxyPorts)) {
      seen[name] = []
      for (const [ip, sport, url, extra] of cases) seen[name].push(await viaProxyV1(port, ip, sport, url, extra))
    }
    assert.deepEqual(seen['caching-router'], seen.varnishd)
    const first = seen.varnishd?.[0] as Record<string, string>
    assert.equal(first['x-client'], '203.0.113.1 40000')
    assert.equal(first['x-identity'], '203.0.113.1')
    assert.equal(first['x-server'], '192.0.2.1 443')
    assert.equal(first['x-remote'], '127.0.0.1')
    assert.equal(first['x-forwarded'], '203.0.113.1')
    const reached = new Set(seen.varnishd?.map((r) => r['x-backend']))
    assert.ok(reached.size >= 3, `client addresses spread over the backends: ${[...reached]}`)
  })

  test('the same client address always reaches the same backend, whatever its port', async () => {
    for (const [name, port] of Object.entries(proxyPorts)) {
      const picks = new Set<string>()
      for (let i = 0; i < 10; i++) picks.add((await viaProxyV1(port, '203.0.113.77', 30000 + i, '/identity'))['x-backend'] as string)
      assert.equal(picks.size, 1, `${name}: ${[...picks]}`)
    }
  })

  test('stunnel with protocol = proxy in front: client.ip is the TLS client, not stunnel', { skip: stunnelInstalled || process.env.CI ? false : 'stunnel not installed (with CI set this fails instead)' }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'proxy-stunnel-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const results: Record<string, { client: string; port: string; identity: string; remote: string; backend: string }[]> = {}
    let i = 0
    for (const [name, port] of Object.entries(proxyPorts)) {
      const accept = STUNNEL_PORTS[i++] as number
      const file = join(dir, `${name}.conf`)
      await writeFile(
        file,
        ['foreground = yes', 'pid =', `cert = ${FIX}localhost.crt`, `key = ${FIX}localhost.key`, '[https]', `accept = 127.0.0.1:${accept}`, `connect = 127.0.0.1:${port}`, 'protocol = proxy', ''].join('\n'),
      )
      const child = spawn(STUNNEL, [file], { stdio: 'ignore' })
      t.after(() => {
        child.kill('SIGTERM')
      })
      await waitForPort(accept)
      results[name] = []
      for (let k = 0; k < 5; k++) {
        const r = await overTls(accept, '/identity')
        // std.port(client.ip) is the TLS client's own port: the address is the browser's, not stunnel's.
        assert.equal(r.port, String(r.localPort), `${name}: client.ip's port is the TLS client's`)
        results[name].push({ client: r.client, port: 'CPORT', identity: r.identity, remote: r.remote, backend: r.backend })
      }
      child.kill('SIGTERM')
    }
    assert.deepEqual(results['caching-router'], results.varnishd)
  })
})

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy()
        resolve(true)
      })
      c.on('error', () => resolve(false))
    })
    if (up) return
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`nothing listens on ${port}`)
}

function overTls(port: number, url: string): Promise<{ client: string; port: string; identity: string; remote: string; backend: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    let localPort = 0
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
      localPort = s.localPort ?? 0
      s.write(`GET ${url} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n`)
    })
    let buf = ''
    s.setEncoding('latin1')
    s.on('data', (c: string) => {
      buf += c
    })
    s.on('error', reject)
    s.on('close', () => {
      const h = (name: string) => new RegExp(`^${name}: (.*)$`, 'im').exec(buf)?.[1]?.trim() ?? ''
      const [client = '', cport = ''] = h('X-Client').split(' ')
      resolve({ client, port: cport, identity: h('X-Identity'), remote: h('X-Remote'), backend: h('X-Backend'), localPort })
    })
  })
}
