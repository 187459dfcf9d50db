import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import http2 from 'node:http2'
import { after, before, describe, test } from 'node:test'
import { io, type Socket } from 'socket.io-client'
import { fetchRaw } from './client.js'
import { LAYER_SPECS, LAYERS, type Layer, missingProgram, realProgram, type TlsConfig } from './layers.js'
import { waitForOutput } from './processes.js'
import { PUBLIC_DIR, type Stack, startStack } from './stack.js'

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** All 8 ways to pick which layers are the real programs: [], [tls], ..., [tls, router, static]. */
const combinations: Layer[][] = Array.from({ length: 2 ** LAYERS.length }, (_, bits) => LAYERS.filter((_, i) => bits & (1 << i)))
/**
 * hitch's chains (config/hitch.conf: ALPN h2, PROXY v2 to the router's PROXY listener): ours or
 * hitch in front of ours or varnishd, and the all-real hitch -> varnishd -> nginx.
 */
const hitchCombinations: Layer[][] = [[], ['tls'], ['router'], ['tls', 'router'], ['tls', 'router', 'static']]
const chains: [TlsConfig, Layer[]][] = [...combinations.map((c) => ['stunnel', c] as [TlsConfig, Layer[]]), ...hitchCombinations.map((c) => ['hitch', c] as [TlsConfig, Layer[]])]

const label = (real: Layer[], tlsConfig: TlsConfig) =>
  LAYERS.map((l) => (real.includes(l) ? realProgram(l, tlsConfig).program.split('/').pop() : LAYER_SPECS[l].pkg)).join(' -> ') +
  (tlsConfig === 'hitch' ? ' (hitch.conf)' : '')

for (const [tlsConfig, real] of chains) {
  const skip = (await Promise.all(real.map((l) => missingProgram(l, tlsConfig)))).find((m) => m !== undefined)
  describe(`the chain with ${label(real, tlsConfig)}`, { skip }, () => {
    let stack: Stack
    before(async () => {
      stack = await startStack({ real, tlsConfig })
    })
    after(async () => {
      await stack?.stop()
    })

    if (tlsConfig === 'hitch') {
      test('HTTP/2 by ALPN through the chain: node:http2 gets a static file and the app page over h2', async (t) => {
        const session = http2.connect(stack.httpsUrl, { ca: stack.caCert })
        t.after(() => session.close())
        session.on('error', () => undefined)
        const get = (path: string) =>
          new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
            const req = session.request({ ':path': path })
            const chunks: Buffer[] = []
            let status = 0
            req.on('response', (h) => {
              status = Number(h[':status'])
            })
            req.on('data', (c: Buffer) => chunks.push(c))
            req.on('end', () => resolve({ status, body: Buffer.concat(chunks) }))
            req.on('error', reject)
            req.end()
          })
        const [file, page] = await Promise.all([get('/app.js'), get('/')])
        assert.equal(session.alpnProtocol, 'h2')
        assert.equal(file.status, 200)
        assert.equal(sha256(file.body), sha256(await readFile(`${PUBLIC_DIR}/app.js`)))
        assert.equal(page.status, 200)
        assert.match(page.body.toString(), /<title>edgestack demo<\/title>/)
      })
    }

    test('a static file comes through all three layers byte for byte, served by the static layer', async () => {
      const res = await fetchRaw(`${stack.httpsUrl}/app.js`, { ca: stack.caCert })
      assert.equal(res.status, 200)
      assert.match(String(res.headers['content-type']), /javascript/)
      assert.equal(sha256(res.body), sha256(await readFile(`${PUBLIC_DIR}/app.js`)))
      // nginx and static-server both write the `combined` access log to stdout.
      await waitForOutput(stack.static, /"GET \/app\.js HTTP\/1\.1" 200 /)
    })

    test('GET / returns the app page, served by the app', async () => {
      const res = await fetchRaw(`${stack.httpsUrl}/`, { ca: stack.caCert })
      assert.equal(res.status, 200)
      assert.match(res.body.toString(), /<title>edgestack demo<\/title>/)
      await waitForOutput(stack.app, /"GET \/" 200/)
    })

    for (const transport of ['websocket', 'polling'] as const) {
      test(`socket.io over wss with ${transport}: a message goes round trip to a second client`, async (t) => {
        const options = { transports: [transport], ca: stack.caCert, reconnection: false, forceNew: true, timeout: 10_000 }
        const a: Socket = io(stack.httpsUrl, options)
        const b: Socket = io(stack.httpsUrl, options)
        t.after(() => {
          a.close()
          b.close()
        })
        await Promise.all([connected(a), connected(b)])
        assert.equal(a.io.engine.transport.name, transport)
        assert.equal(b.io.engine.transport.name, transport)
        const text = `hello over ${transport} through ${real.join(',') || 'ours'} (${tlsConfig})`
        const received = new Promise<{ from: string; text: string }>((resolve) => {
          b.on('message', (m: { from: string; text: string }) => {
            if (m.text === text) resolve(m)
          })
        })
        a.emit('message', text)
        assert.equal((await received).text, text)
      })
    }

    // Last: it stops the app.
    test('the app down: 503 from the router, 502 from the static fallback, static files still served', async () => {
      await stack.app.stop()
      const down = await fetchRaw(`${stack.httpsUrl}/`, { ca: stack.caCert })
      assert.equal(down.status, 503)
      assert.match(down.body.toString(), /Backend fetch failed/)
      // A file the static layer does not have falls back to the app (try_files ... @proxy): 502.
      const fallback = await fetchRaw(`${stack.httpsUrl}/missing.js`, { ca: stack.caCert })
      assert.equal(fallback.status, 502)
      const ok = await fetchRaw(`${stack.httpsUrl}/app.css`, { ca: stack.caCert })
      assert.equal(ok.status, 200)
      for (const d of [stack.tls, stack.router, stack.static]) assert.ok(d.alive(), `${d.name} died`)
    })

    test('stopping the stack leaves no process behind', async () => {
      const daemons = stack.daemons()
      assert.equal(daemons.length, 4)
      await stack.stop()
      for (const d of daemons) assert.equal(d.alive(), false, `${d.name} (process group ${d.child.pid}) is still running`)
    })
  })
}

function connected(s: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve())
    s.once('connect_error', reject)
  })
}
