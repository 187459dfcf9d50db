import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { adminCommand } from '../src/admin-client.js'
import { get, latch, sleep, startOrigin } from './router-harness.js'
import { spawnRouter } from './router-process.js'

/**
 * `--workers N`: N worker threads behind the same listening socket, one cache across them
 * (src/workers/). Real processes, a real origin counting its requests; which worker takes a
 * connection is the kernel's choice, so each test sends batches of fresh connections until
 * the summed counters show that every worker served (each worker's store holds one copy).
 */

// This helper's port range (29000-29999): -T must be known before the router starts.
let nextPort = 29100 + (process.pid % 50) * 10
const admin = () => ({ host: '127.0.0.1', port: nextPort++ })

async function stat(address: { host: string; port: number }, name: string): Promise<number> {
  const { status, body } = await adminCommand(address, undefined, 'stats')
  assert.equal(status, 200, body)
  const m = new RegExp(`^MAIN\\.${name}\\s+(\\d+)`, 'm').exec(body)
  assert.ok(m, `${name} in stats:\n${body}`)
  return Number(m[1])
}

/** Fresh connections, `width` at a time, until `done` (bounded: 60 batches). */
async function spread(url: string, width: number, done: () => Promise<boolean>, seen: (body: string) => void): Promise<void> {
  for (let i = 0; i < 60; i++) {
    const replies = await Promise.all(Array.from({ length: width }, () => get(url)))
    for (const r of replies) seen(r.body)
    if (await done()) return
  }
  assert.fail('the kernel never handed connections to every worker')
}

describe('caching-router --workers: one cache across worker threads', () => {
  const routers: Array<{ stop(): Promise<void> }> = []
  after(async () => {
    for (const r of routers) await r.stop()
  })

  async function start(originPort: number, workers: number, extra: string[] = []) {
    const T = admin()
    const router = await spawnRouter(['-a', '127.0.0.1:0', '-b', `127.0.0.1:${originPort}`, '-T', `${T.host}:${T.port}`, '--workers', String(workers), ...extra])
    routers.push(router)
    // Every worker listening (each logs it) before the first request.
    for (let i = 0; i < 500 && (router.output().match(/listening on/g) ?? []).length < workers; i++) await sleep(20)
    return { url: `http://127.0.0.1:${router.port}`, T, router }
  }

  test('an object fetched by one worker is a hit in every worker: one origin fetch', async (t) => {
    const origin = await startOrigin(t, (_req, res) => {
      res.setHeader('Cache-Control', 'max-age=300')
      res.end('one kibibyte or so')
    })
    const { url, T } = await start(origin.address.port, 2)
    await spread(
      `${url}/shared`,
      8,
      async () => (await stat(T, 'n_object')) === 2,
      (body) => assert.equal(body, 'one kibibyte or so'),
    )
    assert.equal(origin.seen.length, 1, 'one origin fetch for every worker')
    // Counters are summed across workers: every request is one client request.
    assert.equal(await stat(T, 'client_req'), (await stat(T, 'cache_hit')) + (await stat(T, 'cache_miss')))
  })

  test('a gzip object copied to another worker is gunzipped there for a client without gzip', async (t) => {
    const text = 'copied gzip body. '.repeat(100)
    const origin = await startOrigin(t, (_req, res) => {
      res.writeHead(200, { 'Cache-Control': 'max-age=300', 'Content-Encoding': 'gzip' })
      res.end(gzipSync(text))
    })
    const { url, T } = await start(origin.address.port, 2)
    const bodies = new Set<string>()
    // Clients without Accept-Encoding on both workers: one holds the fetched object, the other its copy.
    await spread(`${url}/gz`, 8, async () => (await stat(T, 'n_object')) === 2, (body) => bodies.add(body))
    assert.deepEqual([...bodies], [text])
    assert.equal(origin.seen.length, 1)
  })

  test('a ban through -T reaches every worker', async (t) => {
    let version = 0
    const origin = await startOrigin(t, (_req, res) => {
      version++
      res.setHeader('Cache-Control', 'max-age=300')
      res.end(`v${version}`)
    })
    const { url, T } = await start(origin.address.port, 2)
    await spread(`${url}/banned`, 8, async () => (await stat(T, 'n_object')) === 2, () => {})
    assert.equal(origin.seen.length, 1)
    assert.equal((await adminCommand(T, undefined, 'ban req.url ~ ^/banned')).status, 200)
    // Each worker's store kills its own copy at lookup: two kills, one new fetch, never v1 again.
    await spread(
      `${url}/banned`,
      8,
      async () => (await stat(T, 'bans_obj_killed')) === 2,
      (body) => assert.equal(body, 'v2'),
    )
    assert.equal(origin.seen.length, 2, 'one fetch after the ban, not one a worker')
  })

  test('concurrent misses on different workers for a slow object: one origin fetch', async (t) => {
    // Each round's object is held at the origin until all its clients are in.
    const held = Array.from({ length: 10 }, () => latch())
    const origin = await startOrigin(t, (req, res) => {
      void held[Number(req.url?.slice('/slow'.length))]?.wait.then(() => {
        res.setHeader('Cache-Control', 'max-age=300')
        res.end('slow and shared')
      })
    })
    const { url, T } = await start(origin.address.port, 2)
    for (let round = 0; round < 10; round++) {
      const replies = Array.from({ length: 16 }, () => get(`${url}/slow${round}`))
      for (let i = 0; i < 500 && ((await stat(T, 'client_req')) < 16 * (round + 1) || origin.seen.length < round + 1); i++) await sleep(20)
      // Every client is in and the one fetch is at the origin: the waiters, on either worker, did not fetch.
      assert.equal(origin.seen.length, round + 1)
      held[round]?.open()
      for (const r of await Promise.all(replies)) assert.equal(r.body, 'slow and shared')
      assert.equal(origin.seen.length, round + 1)
      // Both workers served this object (one copy each): the coalescing crossed workers.
      if ((await stat(T, 'n_object')) === 2 * (round + 1)) return
    }
    assert.fail('the kernel never handed a round of connections to both workers')
  })

  test('-T stats and --metrics: one answer, counters summed over the workers', async (t) => {
    const origin = await startOrigin(t, (_req, res) => {
      res.setHeader('Cache-Control', 'max-age=300')
      res.end('x')
    })
    const metrics = admin()
    const { url, T } = await start(origin.address.port, 2, ['--metrics', `${metrics.host}:${metrics.port}`])
    await spread(`${url}/counted`, 8, async () => (await stat(T, 'n_object')) === 2, () => {})
    const requests = await stat(T, 'client_req')
    assert.ok(requests >= 8)
    await Promise.all(Array.from({ length: 10 }, () => get(`${url}/counted`)))
    assert.equal(await stat(T, 'client_req'), requests + 10)
    const scrape = (await get(`http://${metrics.host}:${metrics.port}/metrics`)).body
    assert.match(scrape, /^varnish_main_n_object 2$/m, 'the copies of both workers')
    assert.match(scrape, new RegExp(`^varnish_main_client_req ${requests + 10}$`, 'm'))
  })

  test('a worker that dies is started again; the others serve its share meanwhile', async (t) => {
    const origin = await startOrigin(t, (_req, res) => {
      res.setHeader('Cache-Control', 'max-age=300')
      res.end('still here')
    })
    const { url, T, router } = await start(origin.address.port, 2)
    await spread(`${url}/kept`, 8, async () => (await stat(T, 'n_object')) === 2, () => {})
    assert.equal((await adminCommand(T, undefined, 'debug.panic.worker 1')).status, 200)
    // While worker 1 is gone, worker 0 takes every connection from the shared socket.
    for (const r of await Promise.all(Array.from({ length: 20 }, () => get(`${url}/kept`)))) assert.equal(r.body, 'still here')
    for (let i = 0; i < 500 && (router.output().match(/listening on/g) ?? []).length < 3; i++) await sleep(20)
    assert.match(router.output(), /worker 1 exited/)
    assert.equal((router.output().match(/listening on/g) ?? []).length, 3, 'worker 1 listens again')
    // And serves: its fresh store gets a copy again.
    await spread(`${url}/kept`, 8, async () => (await stat(T, 'n_object')) === 2, (body) => assert.equal(body, 'still here'))
    assert.equal((await adminCommand(T, undefined, 'debug.panic.worker 7')).status, 106)
  })

  test('vcl.inline and vcl.use reach every worker, and a purge made in one worker purges them all', async (t) => {
    let version = 0
    const origin = await startOrigin(t, (_req, res) => {
      version++
      res.setHeader('Cache-Control', 'max-age=300')
      res.end(`v${version}`)
    })
    const { url, T } = await start(origin.address.port, 2)
    const vcl = [
      'vcl 4.1;',
      `backend default { .host = "127.0.0.1"; .port = "${origin.address.port}"; }`,
      'sub vcl_recv { if (req.method == "PURGE") { return (purge); } }',
      'sub vcl_deliver { set resp.http.x-vcl = "second"; }',
    ].join(' ')
    assert.equal((await adminCommand(T, undefined, `vcl.inline second << EOVCL
${vcl}
EOVCL`)).status, 200)
    assert.equal((await adminCommand(T, undefined, 'vcl.use second')).status, 200)
    const headerEverywhere = async (path: string, body: string) => {
      const before = await stat(T, 'n_object')
      for (let i = 0; i < 60; i++) {
        const replies = await Promise.all(Array.from({ length: 8 }, () => get(`${url}${path}`)))
        for (const r of replies) {
          assert.equal(r.headers['x-vcl'], 'second', 'every worker runs the VCL vcl.use chose')
          assert.equal(r.body, body)
        }
        if ((await stat(T, 'n_object')) === before + 2) return
      }
      assert.fail('the kernel never handed connections to every worker')
    }
    await headerEverywhere('/p', 'v1')
    assert.equal((await get(`${url}/p`, { method: 'PURGE' })).status, 200)
    // Every copy is gone at once (n_object counts copies), then one fetch serves both workers.
    for (let i = 0; i < 500 && (await stat(T, 'n_object')) !== 0; i++) await sleep(20)
    assert.equal(await stat(T, 'n_object'), 0)
    await headerEverywhere('/p', 'v2')
    assert.equal(origin.seen.length, 2)
  })

  test('--workers: a bad count, and with -d, stop start-up with a usage error', async () => {
    for (const args of [['--workers', '0'], ['--workers', 'many'], ['--workers', '2', '-d']]) {
      await assert.rejects(spawnRouter(['-a', '127.0.0.1:0', '-b', '127.0.0.1:9', ...args]), /--workers/)
    }
  })

  // spawnRouter's start-up bound, once never cleared, SIGKILLed every manager 10 s after its
  // start; on a slow run the replacement child then found its manager gone
  // (ERR_IPC_CHANNEL_CLOSED at reportReady, EPIPE in the spare). The manager must still run at
  // the end.
  test('kill -9 of the child: the manager starts another, whose workers serve with one cache again', async (t) => {
    const origin = await startOrigin(t, (_req, res) => {
      res.setHeader('Cache-Control', 'max-age=300')
      res.end('after the child')
    })
    const { url, T, router } = await start(origin.address.port, 2)
    await spread(`${url}/k`, 8, async () => (await stat(T, 'n_object')) === 2, () => {})
    const serving = [...router.output().matchAll(/child (\d+) serving/g)].map((m) => Number(m[1]))
    const pid = serving.at(-1) as number
    process.kill(pid, 'SIGKILL')
    const replaced = () => [...router.output().matchAll(/child (\d+) serving/g)].some((m) => Number(m[1]) !== pid && !serving.includes(Number(m[1])))
    // A fresh child (no spare waiting yet) loads for seconds on a loaded machine: bounded at 30 s.
    for (let i = 0; i < 1500 && !replaced(); i++) await sleep(20)
    assert.ok(replaced(), router.output())
    // The new child's cache starts empty: one fetch, and both of its workers serve the object.
    await spread(`${url}/k`, 8, async () => (await stat(T, 'n_object')) === 2, (body) => assert.equal(body, 'after the child'))
    assert.equal(origin.seen.length, 2)
    assert.equal(router.child.exitCode, null, router.output())
    assert.equal(router.child.signalCode, null, router.output())
    assert.doesNotMatch(router.output(), /ERR_IPC_CHANNEL_CLOSED|EPIPE|manager gone|Unhandled/)
  })
})
