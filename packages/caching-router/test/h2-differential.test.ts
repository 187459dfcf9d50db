import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import type http from 'node:http'
import http2 from 'node:http2'
import { after, before, describe, test } from 'node:test'
import { startH2Origin, h2Vcl } from './h2-origin.js'
import { PREFACE, RawH2, settings } from './h2-frames.js'
import { startVclRouter, type VclRouter } from './router-vcl-harness.js'
import { type RunningVarnishd, skipWithoutVarnishd, startVarnishd } from './vcl-varnishd.js'

// HTTP/2 with `-p feature=+http2`, side by side with varnishd 7.1 on the same VCL and origin:
// prior-knowledge h2c with node:http2's client and with curl (hit, miss, pass, pipe turned
// pass, 304, HEAD, a 1 MiB body through the default 65535-byte window, a request body),
// curl's `Upgrade: h2c`, and a preface without the feature (closed unanswered by both).

interface Answer {
  status: number
  /** X-Varnish ids: one for a miss or pass, two for a hit. */
  xids: number
  contentLength: string | undefined
  etag: string | undefined
  bytes: number
  sha: string
}

function h2Request(session: http2.ClientHttp2Session, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': method, ':path': path, ...headers }, { endStream: body === undefined })
    const chunks: Buffer[] = []
    let head: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader = {}
    req.on('response', (h) => {
      head = h
    })
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const all = Buffer.concat(chunks)
      resolve({
        status: Number(head[':status']),
        xids: String(head['x-varnish'] ?? '').split(' ').length,
        contentLength: head['content-length'] as string | undefined,
        etag: head.etag as string | undefined,
        bytes: all.length,
        sha: createHash('sha256').update(all).digest('hex').slice(0, 16),
      })
    })
    req.on('error', reject)
    if (body !== undefined) req.end(body)
  })
}

const CASES: Array<[name: string, method: string, path: string, headers?: Record<string, string>, body?: Buffer]> = [
  ['miss', 'GET', '/obj?1'],
  ['hit', 'GET', '/obj?1'],
  ['pass', 'GET', '/pass?1'],
  ['pipe in vcl_recv is a pass on HTTP/2', 'GET', '/pipe?1'],
  ['miss of an ETag object', 'GET', '/etag'],
  ['304 on a hit', 'GET', '/etag', { 'if-none-match': '"v1"' }],
  ['HEAD of a hit', 'HEAD', '/obj?1'],
  ['1 MiB miss through the 65535-byte window', 'GET', '/big'],
  ['1 MiB hit', 'GET', '/big'],
  ['a request body (pass), past the first window', 'POST', '/pass/post', { 'content-type': 'application/octet-stream' }, Buffer.alloc(300_000, 'y')],
]

function curl(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-s', '--max-time', '10', ...args], (err, stdout) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout }))
  })
}

describe('HTTP/2 (feature=+http2): caching-router vs varnishd', { skip: skipWithoutVarnishd }, () => {
  let origin: http.Server
  let varnishd: RunningVarnishd
  let router: VclRouter
  let plain: VclRouter
  let plainVarnishd: RunningVarnishd

  before(async () => {
    const o = await startH2Origin()
    origin = o.server
    ;[varnishd, router, plainVarnishd, plain] = await Promise.all([
      startVarnishd(h2Vcl(o.port), ['-p', 'feature=+http2']),
      startVclRouter(h2Vcl(o.port), 'boot.vcl', { feature: '+http2' }),
      startVarnishd(h2Vcl(o.port)),
      startVclRouter(h2Vcl(o.port)),
    ])
  })
  after(async () => {
    await Promise.all([varnishd?.stop(), router?.stop(), plainVarnishd?.stop(), plain?.stop()])
    origin?.close()
  })

  test('node:http2 client, prior knowledge: the same answers, in order, on one connection each', async () => {
    const run = async (port: number) => {
      const session = http2.connect(`http://127.0.0.1:${port}`)
      session.on('error', () => {})
      const out: Answer[] = []
      try {
        for (const [, method, path, headers, body] of CASES) out.push(await h2Request(session, method, path, headers, body))
      } finally {
        session.close()
      }
      return out
    }
    const theirs = await run(varnishd.port)
    const ours = await run(router.port)
    for (const [i, [name]] of CASES.entries()) assert.deepEqual(ours[i], theirs[i], name)
    // What the cases are about, not only that both agree.
    const byName = Object.fromEntries(CASES.map(([name], i) => [name, ours[i] as Answer]))
    assert.equal(byName.hit?.xids, 2)
    assert.equal(byName['304 on a hit']?.status, 304)
    assert.equal(byName['1 MiB hit']?.bytes, 1024 * 1024)
    assert.equal(byName['a request body (pass), past the first window']?.bytes, 'got 300000'.length)
  })

  test('curl --http2-prior-knowledge and curl --http2 (Upgrade: h2c): HTTP/2 from both', async () => {
    for (const args of [['--http2-prior-knowledge'], ['--http2']]) {
      const fmt = ['-o', '/dev/null', '-w', '%{http_version} %{http_code} %{size_download}']
      const theirs = await curl([...args, ...fmt, `http://127.0.0.1:${varnishd.port}/curl?${args[0]}`])
      const ours = await curl([...args, ...fmt, `http://127.0.0.1:${router.port}/curl?${args[0]}`])
      assert.equal(ours.stdout, theirs.stdout, args[0])
      assert.match(ours.stdout, /^2 200 /, args[0])
    }
  })

  test('Upgrade: h2c with a body stays HTTP/1.1; without HTTP2-Settings the connection is closed unanswered', async () => {
    const raw = async (port: number, text: string) => {
      const c = await RawH2.connect(port, [Buffer.from(text, 'latin1')])
      let bytes = ''
      c.socket.on('data', (b: Buffer) => {
        bytes += b.toString('latin1')
      })
      await c.until(() => bytes.includes('\r\n\r\n'), 5000)
      c.destroy()
      return bytes.split('\r\n')[0]
    }
    for (const text of [
      'POST /pass/x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n\r\nab',
      'GET /x HTTP/1.1\r\nHost: t\r\nUpgrade: h2c\r\n\r\n',
      'GET /x HTTP/1.1\r\nHost: t\r\nUpgrade: h2c\r\nHTTP2-Settings: !!\r\n\r\n',
      'GET /x HTTP/1.0\r\nHost: t\r\nUpgrade: H2C\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n',
    ]) {
      assert.equal(await raw(router.port, text), await raw(varnishd.port, text), text.split('\r\n')[0])
    }
  })

  test('without feature=+http2 the preface is closed without an answer, as varnishd 7.1 does', async () => {
    for (const port of [plainVarnishd.port, plain.port]) {
      const c = await RawH2.connect(port, [PREFACE, settings()])
      let got = 0
      c.socket.on('data', (b: Buffer) => {
        got += b.length
      })
      assert.equal(await c.untilClosed(10_000), true, `port ${port}`)
      assert.equal(got, 0)
    }
  })
})
