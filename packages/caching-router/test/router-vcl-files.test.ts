import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { type TestContext, test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { startVclRouter } from './router-vcl-harness.js'

const CONFIG = new URL('../../../../config/', import.meta.url)

/** An origin that names itself in every answer and echoes bytes after a websocket upgrade. */
async function origin(t: TestContext, name: string): Promise<HostPort & { seen: string[] }> {
  const seen: string[] = []
  const server = http.createServer((req, res) => {
    seen.push(req.url ?? '')
    res.end(`${name} ${req.url}`)
  })
  server.on('upgrade', (req, socket: net.Socket) => {
    seen.push(`upgrade ${req.url} ${req.headers.upgrade}`)
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Origin: ${name}\r\n\r\n`)
    socket.pipe(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { host: '127.0.0.1', port: (server.address() as AddressInfo).port, seen }
}

/** config/FILE with the article's ports (3000 app, 8081 static) replaced by the test's origins. */
async function routerOn(t: TestContext, file: string, app: HostPort, stat: HostPort): Promise<string> {
  const text = (await readFile(new URL(file, CONFIG), 'utf8')).replace('"3000"', `"${app.port}"`).replace('"8081"', `"${stat.port}"`)
  const r = await startVclRouter(text, file)
  t.after(() => r.stop())
  return `127.0.0.1:${r.port}`
}

/** A websocket-style upgrade over a raw socket: the 101 head, then bytes echoed back. */
async function upgrade(at: string, path: string): Promise<string> {
  const [host, port] = at.split(':') as [string, string]
  const socket = net.connect(Number(port), host)
  await once(socket, 'connect')
  socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`)
  let got = ''
  socket.setEncoding('latin1')
  socket.on('data', (c: string) => {
    got += c
    if (got.endsWith('\r\n\r\n')) socket.write('ping')
    if (got.endsWith('ping')) socket.end()
  })
  socket.setTimeout(5000, () => socket.destroy())
  await once(socket, 'close')
  return got
}

for (const file of ['default.vcl', 'default-3.0.vcl']) {
  test(`config/${file} routes the article's stack: static files to nginx's role, the rest and websockets to the app`, async (t) => {
    const app = await origin(t, 'app')
    const stat = await origin(t, 'static')
    const at = await routerOn(t, file, app, stat)
    assert.equal(await (await fetch(`http://${at}/app.js`)).text(), 'static /app.js')
    assert.equal(await (await fetch(`http://${at}/style.css`)).text(), 'static /style.css')
    assert.equal(await (await fetch(`http://${at}/`)).text(), 'app /')
    // Cached: the second / is a hit, the app sees one request.
    const again = await fetch(`http://${at}/`)
    assert.equal(await again.text(), 'app /')
    assert.match(again.headers.get('x-varnish') ?? '', /^\d+ \d+$/)
    // default.vcl probes the app's /healthz (its hash director leaves a dead instance out).
    assert.deepEqual(
      app.seen.filter((u) => u !== '/healthz'),
      ['/'],
    )
    const ws = await upgrade(at, '/socket.io/?EIO=4&transport=websocket')
    assert.match(ws, /^HTTP\/1\.1 101 /)
    assert.match(ws, /X-Origin: app/)
    assert.match(ws, /ping$/)
    assert.ok(app.seen.includes('upgrade /socket.io/?EIO=4&transport=websocket websocket'), app.seen.join(', '))
  })
}
