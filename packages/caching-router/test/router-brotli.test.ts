import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { type TestContext, test } from 'node:test'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import { get, type Reply, sleep, startOrigin } from './router-harness.js'
import { spawnRouter } from './router-process.js'
import { freePort } from '@edgestack/common/test/ports'
import { adminCommand } from '../src/admin-client.js'

// `--brotli` (an edgestack extension): a brotli copy kept beside a gzip object and sent to
// clients whose Accept-Encoding takes br; gzip and plain clients get what they got before.
// The real CLI and a real origin that sends gzip.

const run = promisify(execFile)
const TEXT = 'brotli beside gzip. '.repeat(400)
const GZ = zlib.gzipSync(TEXT)

interface Got {
  status: number
  headers: Reply['headers']
  body: Buffer
}

async function fetch(port: number, path: string, headers: Record<string, string>, method = 'GET'): Promise<Got> {
  const r = await get(`http://127.0.0.1:${port}${path}`, { method, headers })
  // get() reads latin1: the bytes as they came.
  return { status: r.status, headers: r.headers, body: Buffer.from(r.body, 'latin1') }
}

async function start(t: TestContext, extra: string[]) {
  const origin = await startOrigin(t, (req, res) => {
    if (req.url === '/plain') {
      res.writeHead(200, { 'Cache-Control': 'max-age=60', 'Content-Type': 'text/plain' })
      res.end(TEXT)
      return
    }
    // The origin gzips when asked (a fill always asks: http_gzip_support).
    res.writeHead(200, { 'Cache-Control': 'max-age=60', 'Content-Type': 'text/plain', 'Content-Encoding': 'gzip', ETag: '"v1"' })
    res.end(GZ)
  })
  const router = await spawnRouter(['-a', '127.0.0.1:0', '-b', `127.0.0.1:${origin.address.port}`, ...extra])
  t.after(() => router.stop())
  return { origin, port: router.port }
}

/** Asks until the copy is there (it is made off the event loop once the object is complete): at most 100 tries. */
async function untilBrotli(port: number, path: string, headers: Record<string, string>): Promise<Got> {
  let got = await fetch(port, path, headers)
  for (let i = 0; i < 100 && got.headers['content-encoding'] !== 'br'; i++) {
    await sleep(20)
    got = await fetch(port, path, headers)
  }
  return got
}

test('--brotli: br clients get the brotli copy, gzip and plain clients what they got before', async (t) => {
  const { origin, port } = await start(t, ['--brotli'])
  const br = await untilBrotli(port, '/g', { 'Accept-Encoding': 'gzip, deflate, br' })
  assert.equal(br.status, 200)
  assert.equal(br.headers['content-encoding'], 'br')
  assert.equal(zlib.brotliDecompressSync(br.body).toString(), TEXT)
  assert.ok(br.body.length < GZ.length, `brotli ${br.body.length} bytes, gzip ${GZ.length}`)
  assert.equal(br.headers['content-length'], String(br.body.length))
  assert.match(String(br.headers.vary), /Accept-Encoding/i)
  assert.equal(br.headers.etag, 'W/"v1"')
  // One object: the copy came from the stored gzip body, not from another fetch.
  assert.equal(origin.seen.length, 1)

  const gz = await fetch(port, '/g', { 'Accept-Encoding': 'gzip' })
  assert.equal(gz.headers['content-encoding'], 'gzip')
  assert.equal(gz.headers.etag, '"v1"')
  assert.equal(zlib.gunzipSync(gz.body).toString(), TEXT)
  const refused = await fetch(port, '/g', { 'Accept-Encoding': 'br;q=0, gzip' })
  assert.equal(refused.headers['content-encoding'], 'gzip')
  const plain = await fetch(port, '/g', {})
  assert.equal(plain.headers['content-encoding'], undefined)
  assert.equal(plain.body.toString(), TEXT)
  assert.equal(origin.seen.length, 1)

  // A HEAD says what the GET gets; a Range is a range of the br bytes (the representation sent).
  const head = await fetch(port, '/g', { 'Accept-Encoding': 'br, gzip' }, 'HEAD')
  assert.equal(head.headers['content-encoding'], 'br')
  assert.equal(head.headers['content-length'], String(br.body.length))
  const range = await fetch(port, '/g', { 'Accept-Encoding': 'br, gzip', Range: 'bytes=0-9' })
  assert.equal(range.status, 206)
  assert.equal(range.headers['content-encoding'], 'br')
  assert.deepEqual(range.body, br.body.subarray(0, 10))

  // A client that takes br but not gzip: the same object (the lookup does not split by
  // Accept-Encoding), its brotli copy.
  const brOnly = await fetch(port, '/g', { 'Accept-Encoding': 'br' })
  assert.equal(brOnly.headers['content-encoding'], 'br')
  assert.equal(zlib.brotliDecompressSync(brOnly.body).toString(), TEXT)
  assert.equal(origin.seen.length, 1)

  // An object the origin sent plain has no gzip body and no copy.
  const p1 = await fetch(port, '/plain', { 'Accept-Encoding': 'br' })
  await sleep(50)
  const p2 = await fetch(port, '/plain', { 'Accept-Encoding': 'br' })
  for (const p of [p1, p2]) {
    assert.equal(p.headers['content-encoding'], undefined)
    assert.equal(p.body.toString(), TEXT)
  }
})

test('without --brotli a br client gets gzip, as from varnishd', async (t) => {
  const { port } = await start(t, [])
  await fetch(port, '/g', { 'Accept-Encoding': 'gzip, br' })
  await sleep(100)
  const got = await fetch(port, '/g', { 'Accept-Encoding': 'gzip, br' })
  assert.equal(got.headers['content-encoding'], 'gzip')
})

test('--brotli with --workers 2: each worker has the copy, of the object it fetched or copied', async (t) => {
  // -T must be known before the router starts: a free port below the ephemeral range.
  const ADMIN = { host: '127.0.0.1', port: await freePort() }
  const { origin, port } = await start(t, ['--brotli', '--workers', '2', '-T', `${ADMIN.host}:${ADMIN.port}`])
  const objects = async () => Number(/^MAIN\.n_object\s+(\d+)/m.exec((await adminCommand(ADMIN, undefined, 'stats')).body)?.[1])
  // Fresh connections, 8 at a time, until both workers hold the object and every answer is br.
  let all: Got[] = []
  for (let i = 0; i < 60; i++) {
    all = await Promise.all(Array.from({ length: 8 }, () => fetch(port, '/g', { 'Accept-Encoding': 'br' })))
    if ((await objects()) === 2 && all.every((g) => g.headers['content-encoding'] === 'br')) break
    await sleep(20)
  }
  assert.equal(await objects(), 2)
  for (const g of all) assert.equal(zlib.brotliDecompressSync(g.body).toString(), TEXT)
  assert.equal(origin.seen.length, 1)
})

test('varnishd refuses the flag: it lives on the command line, never in the VCL', async (t) => {
  if (!existsSync('/usr/sbin/varnishd')) {
    if (process.env.CI) assert.fail('varnishd is not installed')
    t.skip('varnishd is not installed: NOT compared')
    return
  }
  const real = await run('/usr/sbin/varnishd', ['--brotli', '-b', '127.0.0.1:9', '-a', '127.0.0.1:0', '-n', '/tmp/brotli-refused']).then(
    () => assert.fail('varnishd started'),
    (e: { code: number; stderr: string }) => e,
  )
  assert.equal(real.code, 2)
  assert.match(real.stderr, /invalid option/)
})
