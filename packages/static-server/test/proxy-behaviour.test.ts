import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtemp, writeFile } from 'node:fs/promises'
import net, { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { get, startOurs } from './helpers.js'

/** A backend on raw sockets: `onConnection` gets each connection. */
async function backend(onConnection: (s: net.Socket) => void): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer((s) => {
    s.on('error', () => {})
    onConnection(s)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { port: (server.address() as AddressInfo).port, server }
}

async function proxyTo(port: number, extra = ''): Promise<Awaited<ReturnType<typeof startOurs>>> {
  const dir = await mkdtemp(join(tmpdir(), 'proxy-behaviour-'))
  const file = join(dir, 'nginx.conf')
  await writeFile(
    file,
    `pid ${dir}/x.pid;\nevents {}\nhttp {\n  access_log off;\n  server {\n    listen 127.0.0.1:0;\n    location / { proxy_pass http://127.0.0.1:${port}; ${extra} }\n  }\n}\n`,
  )
  return startOurs(dir, file)
}

/** A raw backend and our server proxying to it, both closed after the test. */
async function proxied(t: TestContext, onConnection: (s: net.Socket) => void, extra = ''): Promise<{ host: string; port: number }> {
  const b = await backend(onConnection)
  const ours = await proxyTo(b.port, extra)
  t.after(async () => {
    await ours.server.close({ drainTimeoutMs: 50 })
    b.server.close()
  })
  return ours.addr[0] as { host: string; port: number }
}

test('a client that leaves mid-body closes the backend connection (no proxy_ignore_client_abort)', async (t) => {
  let upstream: net.Socket | undefined
  const addr = await proxied(t, (s) => {
    upstream = s
    s.once('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\nfirst bytes'))
  })
  const client = net.connect(addr.port, addr.host)
  client.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n')
  await once(client, 'data')
  const closed = once(upstream as net.Socket, 'close')
  client.destroy()
  // proxy_read_timeout is 60 s: only the client's leaving can close it within the test.
  await closed
})

test('a client that leaves before the backend answers closes the backend connection', async (t) => {
  let upstream: net.Socket | undefined
  const addr = await proxied(t, (s) => {
    upstream = s
    // It reads the request and never answers.
    s.resume()
  })
  const client = net.connect(addr.port, addr.host)
  client.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
  while (!upstream) await new Promise((r) => setTimeout(r, 10))
  const closed = once(upstream, 'close')
  client.end()
  await closed
})

test('a head trickled a byte at a time is read whole', async (t) => {
  const answer = 'HTTP/1.1 203 Slowly Now\r\nX-One: 1\r\nX-Two: 2\r\nContent-Length: 2\r\n\r\nok'
  const addr = await proxied(t, (s) => {
    s.once('data', async () => {
      for (const ch of answer) {
        if (s.destroyed) return
        s.write(ch)
        await new Promise((r) => setImmediate(r))
      }
    })
  })
  const r = await get(addr, '/slow')
  assert.equal(r.status, 203)
  assert.equal(r.reason, 'Slowly Now')
  assert.equal(r.headers.get('x-two'), '2')
  assert.equal(r.body.toString(), 'ok')
})

test('a head past proxy_buffer_size is a 502, and the next request is served', async (t) => {
  const addr = await proxied(t, (s) => {
    s.once('data', (c: Buffer) => {
      const big = c.toString().includes('/big')
      s.end(`HTTP/1.1 200 OK\r\nX-Big: ${'v'.repeat(big ? 9000 : 10)}\r\nContent-Length: 2\r\n\r\nok`)
    })
  }, 'proxy_buffer_size 8k;')
  assert.equal((await get(addr, '/big')).status, 502)
  assert.equal((await get(addr, '/small')).status, 200)
})

test('least_conn sends the next requests to the peer with fewer requests in flight', async (t) => {
  const held: net.Socket[] = []
  const slow = await backend((s) => {
    held.push(s)
  })
  const fast = await backend((s) => {
    s.on('data', () => s.write('HTTP/1.1 200 OK\r\nX-Peer: fast\r\nContent-Length: 2\r\n\r\nok'))
  })
  const dir = await mkdtemp(join(tmpdir(), 'proxy-behaviour-'))
  const file = join(dir, 'nginx.conf')
  await writeFile(
    file,
    `pid ${dir}/x.pid;\nevents {}\nhttp {\n  access_log off;\n  upstream u { least_conn; server 127.0.0.1:${slow.port}; server 127.0.0.1:${fast.port}; }\n  server {\n    listen 127.0.0.1:0;\n    location / { proxy_pass http://u; }\n  }\n}\n`,
  )
  const ours = await startOurs(dir, file)
  t.after(async () => {
    for (const s of held) s.destroy()
    await ours.server.close({ drainTimeoutMs: 50 })
    slow.server.close()
    fast.server.close()
  })
  const addr = ours.addr[0] as { host: string; port: number }
  // The first request goes to the first peer, which holds it.
  const pending = net.connect(addr.port, addr.host)
  pending.on('error', () => {})
  pending.write('GET /held HTTP/1.1\r\nHost: x\r\n\r\n')
  t.after(() => pending.destroy())
  while (held.length === 0) await new Promise((r) => setTimeout(r, 10))
  // Round robin would send one of these two to the held peer; least_conn sends both to the other.
  for (const path of ['/a', '/b']) {
    const r = await get(addr, path)
    assert.equal(r.headers.get('x-peer'), 'fast', path)
  }
})
