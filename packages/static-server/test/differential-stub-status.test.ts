import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import { test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { makeFixtures, nginxMissing, parseResponse, rawRequest, startBoth } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'

// stub_status against nginx 1.22 (Debian's nginx has --with-http_stub_status_module): the
// page's exact text, and its numbers as both programs see the same clients. nginx was probed
// with connections at its start-up, so the counters are compared as increments; the
// connection states are compared as they are.

function config(dir: string, port: number, pid: string): string {
  return `${httpHead(dir, port, pid)}
    server {
        listen 127.0.0.1:${port};
        root ${dir}/root;
        location = /status { stub_status; }
        location = /basic { stub_status basic; }
    }
}
`
}

const NUMBERS = /^Active connections: (\d+) \nserver accepts handled requests\n (\d+) (\d+) (\d+) \nReading: (\d+) Writing: (\d+) Waiting: (\d+) \n$/

async function page(addr: HostPort, path = '/status'): Promise<number[]> {
  const r = parseResponse(await rawRequest(addr, `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`))
  assert.equal(r.status, 200)
  assert.equal(r.headers.get('content-type'), 'text/plain')
  assert.equal(r.headers.get('content-length'), String(r.body.length))
  const m = NUMBERS.exec(r.body.toString('latin1'))
  assert.ok(m, `not stub_status's text: ${JSON.stringify(r.body.toString('latin1'))}`)
  return m.slice(1).map(Number)
}

/** A connection that made one keep-alive request and now waits: nginx's "Waiting". */
async function idle(addr: HostPort): Promise<net.Socket> {
  const s = net.connect(addr.port, addr.host)
  s.on('error', () => undefined)
  await once(s, 'connect')
  s.write('GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n')
  await once(s, 'data')
  return s
}

test('differential: stub_status text and counters, as nginx', { skip: nginxMissing }, async (t) => {
  const dir = await makeFixtures()
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, pid))
  const sockets: net.Socket[] = []
  t.after(async () => {
    for (const s of sockets) s.destroy()
    nginx.kill('SIGTERM')
    await ours.close({ drainTimeoutMs: 100 })
  })
  // One view per step: the increments of accepts, handled and requests since the last page,
  // and the states now. A connection closed a moment ago may still be counted by either: the
  // step is asked again (both programs, so their increments stay comparable), bounded.
  const last = new Map<HostPort, number[]>([
    [ourAddr, await page(ourAddr)],
    [theirAddr, await page(theirAddr)],
  ])
  const view = async (addr: HostPort, path?: string) => {
    const now = await page(addr, path)
    const before = last.get(addr) as number[]
    last.set(addr, now)
    const [active, accepts, handled, requests, reading, writing, waiting] = now as [number, number, number, number, number, number, number]
    return { active, accepts: accepts - (before[1] as number), handled: handled - (before[2] as number), requests: requests - (before[3] as number), reading, writing, waiting }
  }
  const step = async (name: string, path?: string) => {
    let ours1 = await view(ourAddr, path)
    let theirs = await view(theirAddr, path)
    for (let i = 0; i < 20 && JSON.stringify(ours1) !== JSON.stringify(theirs); i++) {
      await new Promise((r) => setTimeout(r, 50))
      ours1 = await view(ourAddr, path)
      theirs = await view(theirAddr, path)
    }
    assert.deepEqual(ours1, theirs, name)
    return theirs
  }
  assert.deepEqual(await step('alone'), { active: 1, accepts: 1, handled: 1, requests: 1, reading: 0, writing: 1, waiting: 0 })
  sockets.push(await idle(ourAddr), await idle(theirAddr))
  assert.deepEqual(await step('with an idle keep-alive connection'), { active: 2, accepts: 2, handled: 2, requests: 2, reading: 0, writing: 1, waiting: 1 })
  sockets.push(await idle(ourAddr), await idle(theirAddr))
  await step('stub_status basic (the old argument)', '/basic')

  // HEAD: the fields without the body; anything else: 405.
  for (const method of ['HEAD', 'POST', 'DELETE']) {
    const wire = `${method} /status HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`
    const [a, b] = await Promise.all([rawRequest(ourAddr, wire), rawRequest(theirAddr, wire)])
    const shape = (raw: Buffer) => {
      const text = raw.toString('latin1')
      const head = text.slice(0, text.indexOf('\r\n\r\n'))
      return `${head.slice(0, head.indexOf('\r\n'))} type=${/\r\ncontent-type: (.*)/i.exec(head)?.[1]} body=${text.length - head.length - 4 > 0}`
    }
    assert.equal(shape(a), shape(b), method)
  }
})
