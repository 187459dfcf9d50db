import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import type http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import { after, before, describe, test } from 'node:test'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { END_HEADERS, END_STREAM, frame, getBlock, PREFACE, RawH2, settings, Type } from './h2-frames.js'
import { h2Vcl, startH2Origin } from './h2-origin.js'
import { spawnRouter } from './router-process.js'
import { startVclRouter, type VclRouter } from './router-vcl-harness.js'
import { type RunningVarnishd, skipWithoutVarnishd, startVarnishd, VARNISHADM } from './vcl-varnishd.js'

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

/** A PROXY v2 header (TCP4) from 203.0.113.7:4242 with hitch's TLVs: ALPN and authority. */
function proxyV2(alpn: string): Buffer {
  const tlv = (type: number, value: string) => {
    const v = Buffer.from(value, 'latin1')
    const h = Buffer.alloc(3)
    h[0] = type
    h.writeUInt16BE(v.length, 1)
    return Buffer.concat([h, v])
  }
  const addr = Buffer.from([203, 0, 113, 7, 127, 0, 0, 1, 0x10, 0x92, 0x01, 0xbb])
  const tlvs = Buffer.concat([tlv(0x01, alpn), tlv(0x02, 'example.test')])
  const head = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0, 0])
  head.writeUInt16BE(addr.length + tlvs.length, 14)
  return Buffer.concat([head, addr, tlvs])
}

describe('HTTP/2 on a PROXY listener (hitch in front): caching-router process vs varnishd', { skip: skipWithoutVarnishd }, () => {
  test('PROXY v2 with the ALPN TLV, then the preface: HTTP/2, the client address from the header; the preface decides, as in varnishd', async (t) => {
    const o = await startH2Origin()
    t.after(() => o.server.close())
    const varnishd = await startVarnishd(h2Vcl(o.port), ['-p', 'feature=+http2', '-a', '127.0.0.1:0,PROXY'])
    t.after(() => varnishd.stop())
    const listen = await new Promise<string>((resolve) =>
      execFile(VARNISHADM, ['-n', varnishd.workdir, 'debug.listen_address'], (_e, out) => resolve(out ?? '')),
    )
    const ports = [...listen.matchAll(/127\.0\.0\.1 (\d+)/g)].map((m) => Number(m[1]))
    const theirsPort = ports[1] as number
    const file = join(varnishd.workdir, 'ours.vcl')
    await writeFile(file, h2Vcl(o.port))
    const ours = await spawnRouter(['-F', '-f', file, '-a', '127.0.0.1:0,PROXY', '-p', 'feature=+http2'])
    t.after(() => ours.stop())
    const ask = async (port: number, alpn: string) => {
      const c = await RawH2.connect(port, [proxyV2(alpn), PREFACE, settings()])
      c.write(frame(Type.HEADERS, END_STREAM | END_HEADERS, 1, getBlock(`/proxied?${alpn}`)))
      await c.until(() => c.frames.some((f) => f.stream === 1 && (f.flags & END_STREAM) !== 0), 10_000)
      c.destroy()
      // varnishd ends with an empty DATA frame, ours on the last one with data: what counts is the
      // answer's first frame and its body.
      const mine = c.frames.filter((f) => f.stream === 1)
      const data = mine.filter((f) => f.type === Type.DATA)
      return { first: mine[0]?.type, body: Buffer.concat(data.map((f) => f.payload)).toString(), ended: mine.some((f) => (f.flags & END_STREAM) !== 0) }
    }
    for (const alpn of ['h2', 'http/1.1']) {
      const theirs = await ask(theirsPort, alpn)
      const mine = await ask(ours.port, alpn)
      assert.deepEqual(mine, theirs, alpn)
      assert.equal(mine.first, Type.HEADERS, alpn)
      assert.equal(mine.ended, true, alpn)
    }
    // The access line names the PROXY header's client and HTTP/2.0 (written by a buffered
    // writer: waited for, within a bound).
    const line = /^203\.0\.113\.7 .*"GET http:\/\/test\/proxied\?h2 HTTP\/2\.0" 200 /m
    for (let i = 0; i < 100 && !line.test(ours.output()); i++) await new Promise((r) => setTimeout(r, 50))
    assert.match(ours.output(), /^203\.0\.113\.7 .*"GET http:\/\/test\/proxied\?h2 HTTP\/2\.0" 200 /m)
  })
})

/** VCL that answers with the four addresses VCL sees, in the body (no HPACK to read). */
const addressVcl = (port: number) => `vcl 4.1;
import std;
backend origin { .host = "127.0.0.1"; .port = "${port}"; }
sub vcl_recv { return (synth(200)); }
sub vcl_synth {
    synthetic("client=" + client.ip + ":" + std.port(client.ip) + " server=" + server.ip + ":" + std.port(server.ip) +
        " remote=" + remote.ip + ":" + std.port(remote.ip) + " local=" + local.ip + ":" + std.port(local.ip));
    return (deliver);
}
`

/** The DATA of stream 1 in the frames that follow `from` in `bytes`. */
function stream1Body(bytes: Buffer, from: number): string | undefined {
  const data: Buffer[] = []
  for (let at = from; at + 9 <= bytes.length; ) {
    const len = bytes.readUIntBE(at, 3)
    if (at + 9 + len > bytes.length) break
    if (bytes[at + 3] === Type.DATA && (bytes.readUInt32BE(at + 5) & 0x7fffffff) === 1) {
      data.push(bytes.subarray(at + 9, at + 9 + len))
      if (((bytes[at + 4] as number) & END_STREAM) !== 0) return Buffer.concat(data).toString()
    }
    at += 9 + len
  }
  return undefined
}

/** One request over HTTP/2 behind a PROXY v2 header: prior knowledge, or `Upgrade: h2c`. */
function askAddresses(port: number, how: 'prior' | 'upgrade'): Promise<{ body: string; clientPort: number }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      if (how === 'prior') s.write(Buffer.concat([proxyV2('h2'), PREFACE, settings(), frame(Type.HEADERS, END_STREAM | END_HEADERS, 1, getBlock('/addr'))]))
      else {
        s.write(Buffer.concat([proxyV2('http/1.1'), Buffer.from('GET /addr HTTP/1.1\r\nHost: test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n\r\n')]))
      }
    })
    let got = Buffer.alloc(0)
    let framesAt = how === 'prior' ? 0 : -1
    const timer = setTimeout(() => s.destroy(new Error(`no answer: ${got.toString('latin1')}`)), 10_000)
    s.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c])
      if (framesAt < 0) {
        const end = got.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = got.subarray(0, end).toString()
        if (!/^HTTP\/1\.1 101 /.test(head)) {
          // Rejected here, so the test fails with the head rather than an uncaught exception.
          clearTimeout(timer)
          s.destroy()
          reject(new Error(`no 101 to Upgrade: h2c: ${head}`))
          return
        }
        framesAt = end + 4
        s.write(Buffer.concat([PREFACE, settings()]))
      }
      const body = stream1Body(got, framesAt)
      if (body === undefined) return
      clearTimeout(timer)
      const clientPort = s.localPort as number
      s.destroy()
      resolve({ body, clientPort })
    })
    s.on('error', reject)
  })
}

describe('VCL addresses of an HTTP/2 request behind PROXY: caching-router vs varnishd', { skip: skipWithoutVarnishd }, () => {
  test('client.ip and server.ip with their ports from the PROXY header, remote.ip and local.ip the connection, by prior knowledge and Upgrade: h2c', async (t) => {
    const o = await startH2Origin()
    t.after(() => o.server.close())
    const [varnishd, ours] = await Promise.all([
      startVarnishd(addressVcl(o.port), ['-p', 'feature=+http2', '-a', '127.0.0.1:0,PROXY']),
      startVclRouter(addressVcl(o.port), 'boot.vcl', { feature: '+http2' }, { proxyListener: true }),
    ])
    t.after(() => Promise.all([varnishd.stop(), ours.stop()]))
    for (const how of ['prior', 'upgrade'] as const) {
      const answers = []
      for (const port of [varnishd.ports[1] as number, ours.ports[1] as number]) {
        const { body, clientPort } = await askAddresses(port, how)
        answers.push(body.replace(`remote=127.0.0.1:${clientPort} local=127.0.0.1:${port}`, 'remote=THE-CLIENT local=THE-LISTENER'))
      }
      assert.equal(answers[1], answers[0], how)
      assert.equal(answers[0], 'client=203.0.113.7:4242 server=127.0.0.1:443 remote=THE-CLIENT local=THE-LISTENER', how)
    }
  })
})
