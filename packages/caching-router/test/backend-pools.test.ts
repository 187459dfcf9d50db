import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { adminCommand } from '../src/admin-client.js'
import { sleep } from './router-harness.js'
import { startVclRouter } from './router-vcl-harness.js'

interface Counted {
  port: number
  sockets: Socket[]
  closed: Set<Socket>
}

/** An origin that asks to keep idle connections ten minutes, counting them. */
async function countedOrigin(t: TestContext): Promise<Counted> {
  const sockets: Socket[] = []
  const closed = new Set<Socket>()
  const origin = http.createServer((req, res) => {
    // undici keeps an idle connection as long as the server's hint says.
    res.setHeader('Keep-Alive', 'timeout=600')
    res.setHeader('Cache-Control', 'no-store')
    res.end(`${req.url}`)
  })
  origin.keepAliveTimeout = 600_000
  origin.on('connection', (s: Socket) => {
    sockets.push(s)
    s.on('close', () => closed.add(s))
  })
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve))
  t.after(() => {
    origin.closeAllConnections()
    origin.close()
  })
  return { port: (origin.address() as AddressInfo).port, sockets, closed }
}

// As varnishd's tcp pools (cache_tcp_pool.c), connections belong to the endpoint: VCLs naming
// the same host and port share them, and they close when the last VCL holding them is
// discarded and idle, rather than staying open as long as the backend allows.
test('backends of several VCLs share their endpoint\'s connections; the last VCL to go closes them', async (t) => {
  const a = await countedOrigin(t)
  const b = await countedOrigin(t)
  const vcl = (tag: string, port: number) =>
    `vcl 4.1;\nbackend app { .host = "127.0.0.1"; .port = "${port}"; }\nsub vcl_deliver { set resp.http.X-Vcl = "${tag}"; }\n`
  const r = await startVclRouter(vcl('boot', a.port))
  t.after(() => r.stop())
  const admin = async (command: string) => assert.equal((await adminCommand(r.admin, undefined, command)).status, 200, command)
  const fetchVia = async () => {
    const res = await fetch(`${r.url}/x`)
    await res.text()
    return `${res.status} ${res.headers.get('x-vcl')}`
  }
  assert.equal(await fetchVia(), '200 boot')
  assert.equal(a.sockets.length, 1)
  await writeFile(join(r.dir, 'two.vcl'), vcl('two', a.port))
  await admin(`vcl.load two ${join(r.dir, 'two.vcl')}`)
  await admin('vcl.use two')
  assert.equal(await fetchVia(), '200 two')
  assert.equal(a.sockets.length, 1, 'another VCL naming the same server reuses its connection')
  await admin('vcl.discard boot')
  assert.equal(await fetchVia(), '200 two')
  assert.equal(a.sockets.length, 1, 'still held by two')
  assert.equal(a.closed.size, 0)
  await writeFile(join(r.dir, 'three.vcl'), vcl('three', b.port))
  await admin(`vcl.load three ${join(r.dir, 'three.vcl')}`)
  await admin('vcl.use three')
  assert.equal(await fetchVia(), '200 three')
  await admin('vcl.discard two')
  for (let i = 0; i < 500 && !a.closed.has(a.sockets[0] as Socket); i++) await sleep(10)
  assert.ok(a.closed.has(a.sockets[0] as Socket), 'the last VCL naming the server gone: its connection closed')
  assert.equal(b.closed.size, 0, 'three\'s connection stays')
  assert.equal(await fetchVia(), '200 three')
  assert.equal(b.sockets.length, 1)
})
