import assert from 'node:assert/strict'
import { connect as tlsConnect } from 'node:tls'
import { after, before, describe, test } from 'node:test'
import { fetchRaw } from './client.js'
import { waitForOutput } from './processes.js'
import { type Stack, startStack } from './stack.js'

// What every combination of ours and the real programs must do is in matrix.test.ts; this file
// holds what only our daemons promise (their log lines, their TLS floor).
describe('the article chain: tls-terminator -> caching-router -> static-server / demo-app', () => {
  let stack: Stack
  before(async () => {
    stack = await startStack()
  })
  after(async () => {
    await stack?.stop()
  })

  test('the socket.io client script is reachable through the chain', async () => {
    const res = await fetchRaw(`${stack.httpsUrl}/socket.io/socket.io.js`, { ca: stack.caCert })
    assert.equal(res.status, 200)
    assert.match(res.body.toString(), /Socket\.IO v4/)
  })

  test('every layer writes an access line', async () => {
    await fetchRaw(`${stack.httpsUrl}/app.css`, { ca: stack.caCert })
    // static-server: nginx combined; router: varnishncsa; tls: one line per connection.
    await waitForOutput(stack.static, /"GET \/app\.css HTTP\/1\.1" 200 \d+ "-" "-"/)
    await waitForOutput(stack.router, /"GET http:\/\/localhost:\d+\/app\.css HTTP\/1\.1" 200/)
    await waitForOutput(stack.tls, / closed: 127\.0\.0\.1:\d+ -> .* TLSv1\.3 .* conn=\d+/)
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
