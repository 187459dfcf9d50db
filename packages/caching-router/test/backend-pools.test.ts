import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { adminCommand } from '../src/admin-client.js'
import { sleep } from './router-harness.js'
import { startVclRouter } from './router-vcl-harness.js'

// A VCL's backends are objects with a pool each (BackendPools): two VCLs naming the same backend
// get two pools, and a discarded VCL's pools close once its last request is done, rather than
// keeping idle connections to its backends for as long as the backend allows.
test('a discarded VCL closes its backends\' connections; the VCL in use opens its own', async (t) => {
  const sockets: Socket[] = []
  const closed = new Set<Socket>()
  const origin = http.createServer((req, res) => {
    // undici keeps an idle connection as long as the server's hint says: ten minutes here.
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
  const port = (origin.address() as AddressInfo).port
  const vcl = (tag: string) => `vcl 4.1;\nbackend app { .host = "127.0.0.1"; .port = "${port}"; }\nsub vcl_deliver { set resp.http.X-Vcl = "${tag}"; }\n`
  const r = await startVclRouter(vcl('boot'))
  t.after(() => r.stop())
  const fetchVia = async () => {
    const res = await fetch(`${r.url}/x`)
    await res.text()
    return res.headers.get('x-vcl')
  }
  assert.equal(await fetchVia(), 'boot')
  assert.equal(sockets.length, 1)
  await writeFile(join(r.dir, 'two.vcl'), vcl('two'))
  assert.equal((await adminCommand(r.admin, undefined, `vcl.load two ${join(r.dir, 'two.vcl')}`)).status, 200)
  assert.equal((await adminCommand(r.admin, undefined, 'vcl.use two')).status, 200)
  assert.equal(await fetchVia(), 'two')
  // The same host and port, another VCL's backend: a connection of its own.
  assert.equal(sockets.length, 2)
  assert.equal(closed.size, 0)
  assert.equal((await adminCommand(r.admin, undefined, 'vcl.discard boot')).status, 200)
  for (let i = 0; i < 500 && !closed.has(sockets[0] as Socket); i++) await sleep(10)
  assert.ok(closed.has(sockets[0] as Socket), 'boot\'s connection closed with its VCL')
  assert.equal(closed.has(sockets[1] as Socket), false, 'two\'s connection stays')
  assert.equal(await fetchVia(), 'two')
  assert.equal(sockets.length, 2, 'two\'s pool reused its connection')
})
