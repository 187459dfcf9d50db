import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'
import { io, type Socket } from 'socket.io-client'
import { fetchRaw } from './client.js'
import { LAYER_SPECS, LAYERS, type Layer, missingProgram } from './layers.js'
import { waitForOutput } from './processes.js'
import { PUBLIC_DIR, type Stack, startStack } from './stack.js'

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** All 8 ways to pick which layers are the real programs: [], [tls], ..., [tls, router, static]. */
const combinations: Layer[][] = Array.from({ length: 2 ** LAYERS.length }, (_, bits) => LAYERS.filter((_, i) => bits & (1 << i)))
const missing = new Map<Layer, string | undefined>(await Promise.all(LAYERS.map(async (l) => [l, await missingProgram(l)] as const)))

const label = (real: Layer[]) =>
  LAYERS.map((l) => (real.includes(l) ? LAYER_SPECS[l].real.program.split('/').pop() : LAYER_SPECS[l].pkg)).join(' -> ')

for (const real of combinations) {
  const skip = real.map((l) => missing.get(l)).find((m) => m !== undefined)
  describe(`the chain with ${label(real)}`, { skip }, () => {
    let stack: Stack
    before(async () => {
      stack = await startStack({ real })
    })
    after(async () => {
      await stack?.stop()
    })

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
        const text = `hello over ${transport} through ${real.join(',') || 'ours'}`
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
