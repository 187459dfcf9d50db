import assert from 'node:assert/strict'
import net from 'node:net'
import { test } from 'node:test'
import { startOrigin } from './router-harness.js'
import { spawnRouter } from './router-process.js'

// Issue 15: the router's connection limit follows RLIMIT_NOFILE (two descriptors a client
// after a reserve of 32): under `ulimit -n 96`, 32 clients are served; the next is closed at
// accept without a byte, the ones in are still served, and the refusals are logged once.

const NOFILE = 96
const BUDGET = (NOFILE - 32) / 2

/** A keep-alive client that got one answer; resolves with its socket, rejects when closed unanswered. */
function client(port: number, path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    let got = ''
    s.setEncoding('latin1')
    s.on('data', (c: string) => {
      got += c
      if (/\r\n\r\nok$/.test(got)) resolve(s)
    })
    s.on('error', (e) => reject(e))
    s.on('close', () => reject(new Error(`closed with ${JSON.stringify(got)}`)))
    setTimeout(() => reject(new Error('no answer in 5 s')), 5000).unref()
    s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
  })
}

async function again(s: net.Socket, path: string): Promise<string> {
  return new Promise((resolve) => {
    let got = ''
    const onData = (c: string) => {
      got += c
      if (/\r\n\r\nok$/.test(got)) {
        s.off('data', onData)
        resolve(got)
      }
    }
    s.on('data', onData)
    s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
  })
}

test(`caching-router with ulimit -n ${NOFILE}: ${BUDGET} clients, the next closed at accept`, { timeout: 120_000 }, async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.setHeader('Content-Length', 2)
    res.end('ok')
  })
  const router = await spawnRouter(['-F', '-a', '127.0.0.1:0', '-b', `127.0.0.1:${origin.address.port}`], {
    shell: (cli) => `ulimit -n ${NOFILE} && exec ${cli}`,
  })
  t.after(() => router.stop())
  const clients: net.Socket[] = []
  t.after(() => {
    for (const c of clients) c.destroy()
  })
  for (let i = 0; i < BUDGET; i++) clients.push(await client(router.port, `/c${i}`))
  for (let i = 0; i < 5; i++) await assert.rejects(client(router.port, '/over'), /closed with ""|ECONNRESET/)
  assert.match(await again(clients[0] as net.Socket, '/still'), /^HTTP\/1\.1 200 /)
  ;(clients.shift() as net.Socket).destroy()
  let fresh: net.Socket | undefined
  const errors: string[] = []
  for (let i = 0; i < 20 && fresh === undefined; i++) {
    fresh = await client(router.port, '/fresh').catch((e: Error) => {
      errors.push(e.message)
      return undefined
    })
    if (fresh === undefined) await new Promise((r) => setTimeout(r, 100))
  }
  assert.ok(fresh, errors.join(', '))
  clients.push(fresh)
  assert.ok(!errors.includes('no answer in 5 s'), errors.join(', '))
  // Five refusals in a row: one line (two if they straddled a second), never one each.
  const lines = router.output().match(/connection limit reached \(RLIMIT_NOFILE/g) ?? []
  assert.ok(lines.length >= 1 && lines.length <= 2, router.output())
  assert.doesNotMatch(router.output(), /EMFILE/)
})
