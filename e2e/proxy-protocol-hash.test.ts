import assert from 'node:assert/strict'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import tls from 'node:tls'
import { certLines } from '@edgestack/tls-terminator/test/helpers'
import { programMissing } from './layers.js'
import { portInRange } from './ports.js'
import { type Daemon, startDaemon, startProcess } from './processes.js'

/**
 * The browser's address through a TLS hop that speaks PROXY v1 (stunnel.conf's
 * `protocol = proxy`) into nginx.conf's `listen ... proxy_protocol` with `set_real_ip_from` and
 * `real_ip_header proxy_protocol`: $remote_addr is the browser's, and `ip_hash` sends each
 * browser to the same app instance, whichever of stunnel / tls-terminator and nginx /
 * static-server run the same two files. Browsers are 127.x.y.z source addresses (Linux routes
 * 127/8 to loopback). The programs that cannot bind port 0 take ports in 22300-22999.
 */

const NGINX = '/usr/sbin/nginx'
const STUNNEL = '/usr/bin/stunnel'
const missing = (await Promise.all([programMissing(NGINX, 'nginx-light'), programMissing(STUNNEL, 'stunnel4')])).find((m) => m !== undefined)
// A differential whose peer is missing fails under CI and skips loudly elsewhere.
if (missing && !process.env.CI) console.warn(`SKIPPED: ${missing}; the PROXY-protocol chain was not run against the real programs`)

const BROWSERS = Array.from({ length: 24 }, (_, i) => `127.${10 + (i % 5)}.${(i * 29) % 250}.${2 + (i % 4)}`)

/** One request over TLS from `from`: the answer's body. */
function viaTls(port: number, from: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const tcp = net.connect({ port, host: '127.0.0.1', localAddress: from })
    tcp.on('error', reject)
    const s = tls.connect({ socket: tcp, servername: 'localhost', rejectUnauthorized: false })
    let raw = ''
    s.setTimeout(10_000, () => s.destroy(new Error(`no answer from ${from}`)))
    s.on('data', (c: Buffer) => {
      raw += c.toString('latin1')
    })
    s.on('error', reject)
    s.on('end', () => s.end())
    s.on('close', () => resolve(raw.slice(raw.indexOf('\r\n\r\n') + 4).trim() || raw))
    s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
  })
}

describe('the browser address through PROXY v1: $remote_addr and ip_hash', { skip: process.env.CI ? false : missing }, () => {
  const apps: http.Server[] = []
  const appPorts: number[] = []
  let dir = ''
  const taken = new Set<number>()

  before(async () => {
    for (const name of ['app1', 'app2', 'app3']) {
      const s = http.createServer((_req, res) => res.end(name))
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
      apps.push(s)
      appPorts.push((s.address() as AddressInfo).port)
    }
    dir = await mkdtemp(join(tmpdir(), 'proxy-hash-'))
    await mkdir(join(dir, 'tmp'), { recursive: true })
  })
  after(async () => {
    for (const s of apps) await new Promise<void>((r) => s.close(() => r()))
  })

  async function chain(front: 'stunnel' | 'tls-terminator', back: 'nginx' | 'static-server'): Promise<{ who: string[]; app: string[] }> {
    const staticPort = await portInRange(22300, 23000, taken)
    const tlsPort = await portInRange(22300, 23000, taken)
    const id = `${front}-${back}`
    const nginxConf = join(dir, `${id}.nginx.conf`)
    await writeFile(
      nginxConf,
      `worker_processes 1;
pid ${dir}/${id}.pid;
error_log ${dir}/${id}.error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp; fastcgi_temp_path ${dir}/tmp; uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;
    upstream app { ip_hash; ${appPorts.map((p) => `server 127.0.0.1:${p};`).join(' ')} }
    server {
        listen 127.0.0.1:${staticPort} proxy_protocol;
        set_real_ip_from 127.0.0.1;
        real_ip_header proxy_protocol;
        location = /who { return 200 "$remote_addr\\n"; }
        location / { proxy_pass http://app; }
    }
}
`,
    )
    const stunnelConf = join(dir, `${id}.stunnel.conf`)
    await writeFile(stunnelConf, ['foreground = yes', 'pid =', ...certLines, '[https]', `accept = 127.0.0.1:${tlsPort}`, `connect = 127.0.0.1:${staticPort}`, 'protocol = proxy', ''].join('\n'))
    const started: Daemon[] = []
    try {
      started.push(
        back === 'nginx'
          ? await startProcess('nginx', NGINX, ['-p', dir, '-c', nginxConf, '-g', 'daemon off; master_process off;'], { port: staticPort })
          : await startDaemon('static-server', ['-p', dir, '-c', nginxConf], { port: staticPort }),
      )
      started.push(front === 'stunnel' ? await startProcess('stunnel', STUNNEL, [stunnelConf], { port: tlsPort }) : await startDaemon('tls-terminator', [stunnelConf], { port: tlsPort }))
      const who: string[] = []
      const app: string[] = []
      for (const from of BROWSERS) {
        who.push(await viaTls(tlsPort, from, '/who'))
        app.push(await viaTls(tlsPort, from, '/'))
      }
      return { who, app }
    } finally {
      for (const d of started.reverse()) await d.stop()
    }
  }

  test('stunnel and tls-terminator into nginx and static-server: the same browser, the same instance', async () => {
    const reference = await chain('stunnel', 'nginx')
    assert.deepEqual(reference.who, BROWSERS, 'nginx behind stunnel sees the browsers')
    assert.ok(new Set(reference.app).size > 1, 'ip_hash spreads the browsers')
    for (const [front, back] of [['tls-terminator', 'nginx'], ['stunnel', 'static-server'], ['tls-terminator', 'static-server']] as const) {
      const r = await chain(front, back)
      assert.deepEqual(r.who, BROWSERS, `${back} behind ${front}: $remote_addr`)
      assert.deepEqual(r.app, reference.app, `${back} behind ${front}: the instance each browser lands on`)
    }
  })
})
