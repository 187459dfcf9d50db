import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { connect as tlsConnect } from 'node:tls'
import { after, before, describe, test } from 'node:test'
import { io, type Socket } from 'socket.io-client'
import { fetchRaw } from './client.js'
import { waitForOutput } from './processes.js'
import { PUBLIC_DIR, type Stack, startStack } from './stack.js'

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

describe('the article chain: tls-terminator -> caching-router -> static-server / demo-app', () => {
  let stack: Stack
  before(async () => {
    stack = await startStack()
  })
  after(async () => {
    await stack?.stop()
  })

  test('a static file comes through all three layers byte for byte', async () => {
    const res = await fetchRaw(`${stack.httpsUrl}/app.js`, { ca: stack.caCert })
    assert.equal(res.status, 200)
    assert.match(String(res.headers['content-type']), /javascript/)
    assert.equal(sha256(res.body), sha256(await readFile(`${PUBLIC_DIR}/app.js`)))
    // It was served by static-server, not the app: the router routed it by the article's rule.
    assert.match(stack.static.output(), /"GET \/app\.js HTTP\/1\.1" 200/)
  })

  test('GET / returns the app page, served by the app', async () => {
    const res = await fetchRaw(`${stack.httpsUrl}/`, { ca: stack.caCert })
    assert.equal(res.status, 200)
    assert.match(res.body.toString(), /<title>edgestack demo<\/title>/)
    assert.match(res.body.toString(), /src="\/socket\.io\/socket\.io\.js"/)
    await waitForOutput(stack.app, /"GET \/" 200/)
  })

  test('the socket.io client script is reachable through the chain', async () => {
    const res = await fetchRaw(`${stack.httpsUrl}/socket.io/socket.io.js`, { ca: stack.caCert })
    assert.equal(res.status, 200)
    assert.match(res.body.toString(), /Socket\.IO v4/)
  })

  for (const transport of ['websocket', 'polling'] as const) {
    test(`socket.io over wss with ${transport}: a message goes round trip to a second client`, async (t) => {
      const options = { transports: [transport], ca: stack.caCert, reconnection: false, forceNew: true }
      const a: Socket = io(stack.httpsUrl, options)
      const b: Socket = io(stack.httpsUrl, options)
      t.after(() => {
        a.close()
        b.close()
      })
      await Promise.all([connected(a), connected(b)])
      assert.equal(a.io.engine.transport.name, transport)
      const text = `hello over ${transport} ${Date.now()}`
      const received = new Promise<{ from: string; text: string }>((resolve) => {
        b.on('message', (m: { from: string; text: string }) => {
          if (m.text === text) resolve(m)
        })
      })
      a.emit('message', text)
      const m = await received
      assert.equal(m.text, text)
    })
  }

  test('every layer writes an access line', async () => {
    await fetchRaw(`${stack.httpsUrl}/app.css`, { ca: stack.caCert })
    // static-server: nginx combined; router: varnishncsa; tls: one line per connection.
    await waitForOutput(stack.static, /"GET \/app\.css HTTP\/1\.1" 200 \d+ "-" "-"/)
    await waitForOutput(stack.router, /"GET http:\/\/localhost:\d+\/app\.css HTTP\/1\.1" 200/)
    await waitForOutput(stack.tls, /connection \d+ closed: 127\.0\.0\.1:\d+ -> .* TLSv1\.3 /)
  })

  test('TLS 1.1 is refused', async () => {
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port: stack.tls.port, maxVersion: 'TLSv1.1', minVersion: 'TLSv1', ca: stack.caCert, servername: 'localhost' })
        s.on('secureConnect', () => resolve(s.end()))
        s.on('error', reject)
      }),
    )
  })
})

function connected(s: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve())
    s.once('connect_error', reject)
  })
}
