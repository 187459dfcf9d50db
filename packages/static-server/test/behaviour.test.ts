import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { readFile, stat, utimes, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import type { HostPort } from '@edgestack/common'
import type { StaticServer } from '../src/index.js'
import { freePort, get, makeFixtures, rawRequest, REPO, startOurs, listeningPort } from './helpers.js'
import { upgradeAndPing } from './ws-client.js'

const run = promisify(execFile)
const CLI = join(REPO, 'packages/static-server/dist/src/cli.js')

describe('static-server behaviour on its own', () => {
  let dir: string
  let ours: StaticServer
  let addr: HostPort
  let backend: http.Server
  let backendPort: number
  let deadPort: number
  let silent: net.Server
  let silentPort: number
  const silentSockets = new Set<net.Socket>()

  before(async () => {
    dir = await makeFixtures()
    backend = http.createServer((req, res) => {
      res.setHeader('content-type', 'text/plain')
      res.end(`backend ${req.url} ${req.headers['x-real-ip'] ?? '-'}\n`)
    })
    // The websocket idiom: the app answers 101 and then echoes raw bytes.
    backend.on('upgrade', (req, socket, head) => {
      silentSockets.add(socket as net.Socket)
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\n\r\n`)
      if (head.length) socket.write(head)
      socket.on('data', (d: Buffer) => socket.write(`echo:${d}`))
      socket.on('error', () => {})
    })
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()))
    backendPort = (backend.address() as AddressInfo).port
    deadPort = await freePort()
    silent = net.createServer((s) => {
      silentSockets.add(s)
      s.on('error', () => {})
    })
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()))
    silentPort = (silent.address() as AddressInfo).port
    const conf = `
events {}
http {
    access_log ${dir}/access.log;
    log_format short '$remote_addr "$request" $status $body_bytes_sent $uri';
    client_header_timeout 1s;
    large_client_header_buffers 2 256;
    upstream pair {
        server 127.0.0.1:${deadPort} max_fails=1 fail_timeout=30s;
        server 127.0.0.1:${backendPort};
    }
    upstream withbackup {
        server 127.0.0.1:${deadPort};
        server 127.0.0.1:${backendPort} backup;
    }
    upstream dead { server 127.0.0.1:${deadPort}; }
    server {
        listen 127.0.0.1:0;
        root ${dir}/root;
        access_log ${dir}/short.log short;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        location /pair/ { proxy_pass http://pair; }
        location /backup/ { proxy_pass http://withbackup; }
        location /dead/ { proxy_pass http://dead; }
        location /slow/ { proxy_pass http://127.0.0.1:${silentPort}; proxy_read_timeout 1s; }
        location /ws/ {
            proxy_pass http://127.0.0.1:${backendPort};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header X-Real-IP $remote_addr;
        }
        location /open/ { open_file_cache max=100; open_file_cache_valid 1h; alias ${dir}/root/; }
    }
}`
    await writeFile(join(dir, 'b.conf'), conf)
    const o = await startOurs(dir, join(dir, 'b.conf'))
    ours = o.server
    addr = o.addr[0] as HostPort
  })

  after(async () => {
    await ours?.close({ drainTimeoutMs: 100 })
    backend?.closeAllConnections()
    // Upgraded sockets are the app's to close; node's server.close() waits for them.
    for (const s of silentSockets) s.destroy()
    await new Promise<void>((r) => backend.close(() => r()))
    await new Promise<void>((r) => silent.close(() => r()))
  })

  test('a slow request head is closed by client_header_timeout, without an answer', async () => {
    const out = await rawRequest(addr, 'GET /a.txt HTTP/1.1\r\nHost: x\r\n')
    assert.equal(out.length, 0)
  })

  test('one slow client does not hold up another', async () => {
    const slow = net.connect(addr.port, addr.host)
    slow.on('error', () => {})
    slow.write('GET /a.txt HTTP/1.1\r\n')
    const r = await get(addr, '/a.txt')
    assert.equal(r.status, 200)
    slow.destroy()
  })

  test('a request line longer than large_client_header_buffers is a 414', async () => {
    const r = await get(addr, `/${'a'.repeat(400)}`)
    assert.equal(r.status, 414)
    assert.match(r.body.toString(), /414 Request-URI Too Large/)
  })

  test('headers larger than the buffers get nginx 494 page as 400', async () => {
    const headers: Record<string, string> = {}
    for (let i = 0; i < 10; i++) headers[`X-Big-${i}`] = 'v'.repeat(100)
    const r = await get(addr, '/a.txt', headers)
    assert.equal(r.status, 400)
    assert.match(r.body.toString(), /Request Header Or Cookie Too Large/)
  })

  test('a POST to a file: 405, its small body dropped, the next request on the connection answered (as nginx)', async () => {
    const raw = (
      await rawRequest(addr, 'POST /a.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\nhiGET /a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    ).toString('latin1')
    assert.deepEqual([...raw.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => m[1]), ['405', '200'], raw)
  })

  test('one header field line longer than one buffer is a 400 with the 494 page, as nginx', async () => {
    // 300 bytes fit in 2 x 256 as a whole head but not in one buffer, which nginx requires of every line.
    const r = await get(addr, '/a.txt', { 'X-Long': 'v'.repeat(300) })
    assert.equal(r.status, 400)
    assert.match(r.body.toString(), /Request Header Or Cookie Too Large/)
  })

  test('an edited file is served fresh on the next request (metadata revalidated)', async () => {
    const f = join(dir, 'root/change.txt')
    await writeFile(f, 'version one\n')
    await utimes(f, new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'))
    assert.equal((await get(addr, '/change.txt')).body.toString(), 'version one\n')
    await writeFile(f, 'version two\n')
    const r = await get(addr, '/change.txt')
    assert.equal(r.body.toString(), 'version two\n')
    const st = await stat(f)
    assert.equal(r.headers.get('etag'), `"${Math.floor(st.mtimeMs / 1000).toString(16)}-${st.size.toString(16)}"`)
  })

  test('open_file_cache serves from the cache within open_file_cache_valid', async () => {
    const f = join(dir, 'root/cached.txt')
    await writeFile(f, 'first\n')
    assert.equal((await get(addr, '/open/cached.txt')).body.toString(), 'first\n')
    assert.equal((await get(addr, '/open/cached.txt')).status, 200)
  })

  test('a large file streams whole', async () => {
    const r = await get(addr, '/big.bin')
    const expected = await readFile(join(dir, 'root/big.bin'))
    assert.equal(r.status, 200)
    assert.ok(r.body.equals(expected))
  })

  test('proxy_next_upstream: a dead peer is skipped, the request succeeds', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await get(addr, '/pair/x')
      assert.equal(r.status, 200)
      assert.match(r.body.toString(), /^backend \/pair\/x/)
    }
  })

  test('backup peers take over when the primary is down', async () => {
    const r = await get(addr, '/backup/y')
    assert.equal(r.status, 200)
  })

  test('no live upstream is a 502 with nginx page', async () => {
    const r = await get(addr, '/dead/z')
    assert.equal(r.status, 502)
    assert.match(r.body.toString(), /502 Bad Gateway/)
  })

  test('the only peer of an upstream is never marked down: it answers as soon as it is back', async () => {
    assert.equal((await get(addr, '/dead/a')).status, 502)
    const revived = http.createServer((_req, res) => res.end('back\n'))
    await new Promise<void>((r) => revived.listen(deadPort, '127.0.0.1', () => r()))
    try {
      const r = await get(addr, '/dead/b')
      assert.equal(r.status, 200)
      assert.equal(r.body.toString(), 'back\n')
    } finally {
      revived.closeAllConnections()
      await new Promise<void>((r) => revived.close(() => r()))
    }
  })

  test('an upstream that never answers is a 504 after proxy_read_timeout', async () => {
    const r = await get(addr, '/slow/z')
    assert.equal(r.status, 504)
  })

  test('websocket upgrade through the Upgrade/Connection idiom is tunnelled', async () => {
    const text = await upgradeAndPing(addr, 'GET /ws/socket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    assert.match(text, /^HTTP\/1\.1 101 /)
    assert.match(text, /echo:ping/)
  })

  test('real_ip: X-Forwarded-For from a trusted peer becomes $remote_addr', async () => {
    const r = await get(addr, '/ws/ip', { 'X-Forwarded-For': '203.0.113.9' })
    assert.match(r.body.toString(), /203\.0\.113\.9/)
  })

  test('access_log with a log_format, written to its file', async () => {
    await get(addr, '/a.txt?q=1')
    let text = ''
    for (let i = 0; i < 50 && !text.includes('/a.txt?q=1'); i++) {
      await new Promise((r) => setTimeout(r, 20))
      text = await readFile(join(dir, 'short.log'), 'utf8').catch(() => '')
    }
    assert.match(text, /127\.0\.0\.1 "GET \/a\.txt\?q=1 HTTP\/1\.1" 200 108 \/a\.txt\n/)
  })
})

describe('static-server process: pid file, -s, worker_processes', () => {
  for (const workers of [1, 2]) {
    test(`-s stop through the pid file (worker_processes ${workers})`, async () => {
      const dir = await makeFixtures()
      const conf = join(dir, 'p.conf')
      await writeFile(
        conf,
        `worker_processes ${workers};\npid ${dir}/run.pid;\nerror_log stderr info;\nevents {}\nhttp { access_log off; server { listen 127.0.0.1:0; root ${dir}/root; } }\n`,
      )
      const child = spawn(process.execPath, [CLI, '-p', dir, '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
      const port = await listeningPort(child)
      try {
        if (workers === 1) assert.equal((await get({ host: '127.0.0.1', port }, '/a.txt')).status, 200)
        // The master writes its pid file once every worker serves, which on a loaded machine can
        // be seconds after the first one says it listens: polled, bounded at 15 s.
        for (let i = 0; i < 300; i++) {
          // Created, then written: the file counts once it holds a whole line.
          if ((await readFile(join(dir, 'run.pid'), 'utf8').catch(() => '')).endsWith('\n')) break
          await new Promise((r) => setTimeout(r, 50))
        }
        assert.equal(Number((await readFile(join(dir, 'run.pid'), 'utf8')).trim()), child.pid)
        await run(process.execPath, [CLI, '-p', dir, '-c', conf, '-s', 'stop'])
        assert.equal(await exited, 0)
      } finally {
        child.kill('SIGKILL')
      }
    })
  }

  test('every access_log line is in the file once SIGTERM has stopped the server', async () => {
    const dir = await makeFixtures()
    const conf = join(dir, 'l.conf')
    await writeFile(
      conf,
      `pid ${dir}/l.pid;\nerror_log stderr info;\nevents {}\nhttp { log_format p '$request_uri $status'; access_log ${dir}/lines.log p; server { listen 127.0.0.1:0; root ${dir}/root; } }\n`,
    )
    const child = spawn(process.execPath, [CLI, '-p', dir, '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    try {
      const port = await listeningPort(child)
      let reqs = ''
      for (let i = 0; i < 300; i++) reqs += `GET /a.txt?n=${i} HTTP/1.1\r\nHost: x\r\n${i === 299 ? 'Connection: close\r\n' : ''}\r\n`
      await rawRequest({ host: '127.0.0.1', port }, reqs)
      child.kill('SIGTERM')
      assert.equal(await exited, 0)
      const lines = (await readFile(join(dir, 'lines.log'), 'utf8')).split('\n')
      assert.equal(lines.pop(), '')
      assert.deepEqual(
        lines,
        Array.from({ length: 300 }, (_, i) => `/a.txt?n=${i} 200`),
      )
    } finally {
      child.kill('SIGKILL')
    }
  })
})

describe('listen proxy_protocol, merge_slashes off, expires', () => {
  let ours: StaticServer
  let addrs: HostPort[]
  before(async () => {
    const dir = await makeFixtures()
    await writeFile(
      join(dir, 'pp.conf'),
      `events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:0 proxy_protocol;
        root ${dir}/root;
        set_real_ip_from 127.0.0.1;
        real_ip_header proxy_protocol;
        location / { return 200 "client $remote_addr via $realip_remote_addr, proxy_protocol $proxy_protocol_addr\\n"; }
    }
    server {
        # Another loopback address: servers naming the same address share its socket.
        listen 127.0.0.2:0;
        merge_slashes off;
        root ${dir}/root;
        location /max/ { expires max; alias ${dir}/root/; }
        location /epoch/ { expires epoch; alias ${dir}/root/; }
        location /neg/ { expires -1; alias ${dir}/root/; }
    }
}`,
    )
    const o = await startOurs(dir, join(dir, 'pp.conf'))
    ours = o.server
    addrs = o.addr
  })
  after(async () => {
    await ours?.close({ drainTimeoutMs: 100 })
  })

  test('the PROXY header gives $remote_addr through realip; a request without one is closed', async () => {
    const { encodeProxyV1 } = await import('@edgestack/common')
    const a = addrs[0] as HostPort
    const header = encodeProxyV1({ address: '192.0.2.10', port: 4000 }, { address: '127.0.0.1', port: a.port })
    const { parseResponse } = await import('./helpers.js')
    const r = parseResponse(await rawRequest(a, Buffer.concat([header, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')])))
    assert.equal(r.body.toString(), 'client 192.0.2.10 via 127.0.0.1, proxy_protocol 192.0.2.10\n')
    const bare = await rawRequest(a, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    assert.equal(bare.length, 0)
  })

  test('merge_slashes off keeps // in the URI, so /max/ does not match //max/', async () => {
    const b = addrs[1] as HostPort
    assert.equal((await get(b, '/max/a.txt')).status, 200)
    assert.equal((await get(b, '//max/a.txt')).status, 404)
  })

  test('expires max, epoch and negative', async () => {
    const b = addrs[1] as HostPort
    const max = await get(b, '/max/a.txt')
    assert.equal(max.headers.get('cache-control'), 'max-age=315360000')
    assert.equal(max.headers.get('expires'), 'Thu, 31 Dec 2037 23:55:55 GMT')
    const epoch = await get(b, '/epoch/a.txt')
    assert.equal(epoch.headers.get('expires'), 'Thu, 01 Jan 1970 00:00:01 GMT')
    assert.equal(epoch.headers.get('cache-control'), 'no-cache')
    assert.equal((await get(b, '/neg/a.txt')).headers.get('cache-control'), 'no-cache')
  })
})

describe('SIGHUP / -s reload', () => {
  test('a valid new file replaces the running one; an invalid one is refused and the old one keeps serving', async () => {
    const dir = await makeFixtures()
    const conf = join(dir, 'r.conf')
    const port = await freePort()
    const text = (body: string, extra = '') =>
      `pid ${dir}/r.pid;\nerror_log stderr info;\nevents {}\nhttp { access_log off; server { listen 127.0.0.1:${port}; location / { return 200 "${body}\\n"; } } }\n${extra}`
    await writeFile(conf, text('one'))
    const child = spawn(process.execPath, [CLI, '-p', dir, '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    let out = ''
    const waitFor = (re: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`waited for ${re}: ${out}`)), 10_000)
        const check = () => {
          if (re.test(out)) {
            clearTimeout(t)
            resolve()
          }
        }
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString()
          check()
        })
        check()
      })
    try {
      await waitFor(/listening on/)
      const addr = { host: '127.0.0.1', port }
      assert.equal((await get(addr, '/')).body.toString(), 'one\n')
      await writeFile(conf, text('two'))
      await run(process.execPath, [CLI, '-p', dir, '-c', conf, '-s', 'reload'])
      await waitFor(/reloaded/)
      assert.equal((await get(addr, '/')).body.toString(), 'two\n')
      await writeFile(conf, text('three', 'bogus;\n'))
      child.kill('SIGHUP')
      await waitFor(/reload failed, keeping the running configuration: \[emerg\] unknown directive "bogus"/)
      assert.equal((await get(addr, '/')).body.toString(), 'two\n')
      child.kill('SIGTERM')
      assert.equal(await exited, 0)
    } finally {
      child.kill('SIGKILL')
    }
  })
})
