import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { type BenchContext, startNodePeer, stopAll } from '../layers/server.js'
import { holdIdle, runClient } from '../load/clients.js'
import { originCount, probe } from '../load/probe.js'
import { parseWrk, runWrk } from '../load/wrk.js'
import { capture } from '../procs.js'

async function context(t: { after(fn: () => Promise<void>): void }): Promise<BenchContext> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-test-'))
  t.after(async () => {
    await stopAll()
    await rm(dir, { recursive: true, force: true })
  })
  return { dir, root: dir, cert: '', key: '', serverCpus: undefined, loadCpus: undefined, oursFrom: 'auto', stunnelDebug: 5 }
}

test('wrk against the real origin: its report is read, and every request reached the origin', async (t) => {
  if (!/^wrk /m.test((await capture('wrk', ['-v'])).out)) return t.skip('wrk is not installed')
  const ctx = await context(t)
  const origin = await startNodePeer(ctx, 'origin', 'origin', [])
  const r = await runWrk({ url: `http://127.0.0.1:${origin.port}/x`, connections: 2, durationS: 1, cpus: undefined })
  assert.ok(r.count > 0)
  assert.equal(r.errors, 0)
  assert.equal(r.non2xx, 0)
  assert.ok(r.p50Ms !== null && r.p99Ms !== null && r.p50Ms <= r.p99Ms)
  // wrk may count a few requests it had sent but not seen answered when time ran out.
  assert.ok((await originCount(origin.port)) >= r.count)
})

test('parseWrk refuses output it cannot read instead of reporting zeros', () => {
  assert.throws(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused'), /cannot read wrk/)
})

test('the probe tells a wrong answer from a right one', async (t) => {
  const ctx = await context(t)
  const origin = await startNodePeer(ctx, 'origin', 'origin', [])
  assert.equal(await probe(`http://127.0.0.1:${origin.port}/a`, { status: 200, bodyBytes: 1024 }), undefined)
  assert.match(String(await probe(`http://127.0.0.1:${origin.port}/a`, { status: 200, bodyBytes: 10 })), /1024-byte body/)
  assert.match(String(await probe('http://127.0.0.1:1/', { status: 200, bodyBytes: 1 })), /request failed/)
})

test('the idle client holds its connections and reports them', async (t) => {
  const ctx = await context(t)
  const origin = await startNodePeer(ctx, 'origin', 'origin', [])
  const hold = await holdIdle(['--port', String(origin.port), '--count', '50', '--path', '/'], undefined, 10)
  t.after(() => hold.release())
  assert.deepEqual([hold.open, hold.failed, hold.attempted], [50, 0, 50])
  assert.equal(await originCount(origin.port), 50)
})

test('the websocket client gets its echoes from the app', async (t) => {
  const ctx = await context(t)
  const app = await startNodePeer(ctx, 'app', 'app', [])
  const r = await runClient(
    'ws-echo',
    ['--url', `ws://127.0.0.1:${app.port}/echo`, '--connections', '2', '--duration', '5', '--max', '100'],
    undefined,
    30,
  )
  assert.equal(r.count, 100)
  assert.equal(r.errors + r.non2xx, 0)
})
