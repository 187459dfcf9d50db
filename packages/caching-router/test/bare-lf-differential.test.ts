import assert from 'node:assert/strict'
import net, { type AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { rawExchange } from './raw-client.js'
import { startVclRouter, type VclRouter } from './router-vcl-harness.js'
import { type RunningVarnishd, skipWithoutVarnishd, startVarnishd } from './vcl-varnishd.js'

// Bare LF line ends (RFC 9112 §2.2), side by side with varnishd 7.1: in request heads and in a
// backend's response head, both taken as line ends; what goes on is written with CRLF.

/** A backend that answers every request, with bare LFs as line ends when `eol` says so. */
async function startRawOrigin(eol: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((c) => {
    let buf = ''
    c.setEncoding('latin1')
    c.on('error', () => {})
    c.on('data', (d: string) => {
      buf += d
      for (;;) {
        const end = buf.search(/\r?\n\r?\n/)
        if (end === -1) return
        const target = buf.split(' ')[1] ?? '/'
        buf = buf.slice(buf.indexOf('\n', end + 1) + 1)
        const body = `got ${target}`
        c.write(['HTTP/1.1 200 OK', 'Content-Type: text/plain', `Content-Length: ${body.length}`, 'Cache-Control: no-store', 'X-Origin: raw', '', body].join(eol))
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

const vcl = (port: number, lfPort = port) => `vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "${port}"; }
backend lf { .host = "127.0.0.1"; .port = "${lfPort}"; }
sub vcl_recv { if (req.url ~ "^/lf") { set req.backend_hint = lf; } else { set req.backend_hint = origin; } }
`

/** Sends raw bytes, reads until close (5 s at most). */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    let out = ''
    s.setEncoding('latin1')
    s.on('data', (c: string) => {
      out += c
    })
    s.on('close', () => resolve(out))
    s.on('error', reject)
    s.setTimeout(5000, () => s.destroy())
    s.end(bytes)
  })
}

const summary = (text: string) =>
  [...text.matchAll(/HTTP\/1\.1 (\d{3}) [^\r\n]*\r\n[\s\S]*?\r\n\r\n(got [^\s]*)?/g)].map((m) => `${m[1]} ${m[2] ?? ''}`.trim())

describe('bare LF line ends: caching-router vs varnishd', { skip: skipWithoutVarnishd }, () => {
  let origin: Awaited<ReturnType<typeof startRawOrigin>>
  let lfOrigin: Awaited<ReturnType<typeof startRawOrigin>>
  let ours: VclRouter
  let theirs: RunningVarnishd
  before(async () => {
    origin = await startRawOrigin('\r\n')
    lfOrigin = await startRawOrigin('\n')
    ours = await startVclRouter(vcl(origin.port, lfOrigin.port))
    theirs = await startVarnishd(vcl(origin.port, lfOrigin.port))
  })
  after(async () => {
    await ours?.stop()
    await theirs?.stop()
    await origin?.close()
    await lfOrigin?.close()
  })

  const accepted: [string, string][] = [
    ['a head of bare LFs', 'GET /a HTTP/1.1\nHost: x\nConnection: close\n\n'],
    ['CRLF and bare LF mixed', 'GET /b HTTP/1.1\r\nHost: x\nConnection: close\r\n\n'],
    ['a bare-LF field line then a CRLF empty line', 'GET /c HTTP/1.1\nHost: x\nConnection: close\n\r\n'],
    ['empty bare-LF lines before the request line', '\n\r\n\nGET /d HTTP/1.1\nHost: x\nConnection: close\n\n'],
    ['two pipelined bare-LF requests', 'GET /e1 HTTP/1.1\nHost: x\n\nGET /e2 HTTP/1.1\nHost: x\nConnection: close\n\n'],
    ['a body after a bare-LF head', 'POST /f HTTP/1.1\nHost: x\nContent-Length: 3\nConnection: close\n\nabc'],
  ]
  for (const [name, bytes] of accepted) {
    test(`${name}: answered as varnishd answers`, async () => {
      const [a, b] = await Promise.all([raw(ours.port, bytes), raw(theirs.port, bytes)])
      assert.deepEqual(summary(a), summary(b), `ours:\n${a}\nvarnishd:\n${b}`)
      assert.ok(summary(a).length > 0 && summary(a).every((s) => s.startsWith('200')), a)
    })
  }

  test('a backend head with bare LFs is proxied and re-written with CRLF, request after request', async () => {
    for (const path of ['/lf-1', '/lf-2', '/crlf', '/lf-3']) {
      const [a, b] = await Promise.all([
        rawExchange(ours.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
        rawExchange(theirs.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
      ])
      assert.equal(a.responses[0]?.status, 200, path)
      assert.equal(a.responses[0]?.status, b.responses[0]?.status, path)
      assert.equal(a.responses[0]?.body, b.responses[0]?.body, path)
      assert.equal(a.responses[0]?.headers['x-origin'], 'raw')
    }
    const text = await raw(ours.port, 'GET /lf-head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    const head = text.slice(0, text.indexOf('\r\n\r\n'))
    assert.doesNotMatch(head, /[^\r]\n/, 'every line of the forwarded head ends with CRLF')
  })
})

describe('bare LF: what stays refused (the router alone)', () => {
  let origin: Awaited<ReturnType<typeof startRawOrigin>>
  let ours: VclRouter
  before(async () => {
    origin = await startRawOrigin('\r\n')
    ours = await startVclRouter(vcl(origin.port))
  })
  after(async () => {
    await ours?.stop()
    await origin?.close()
  })
  for (const [name, bytes] of [
    ['a bare CR', 'GET /x HTTP/1.1\rHost: x\r\n\r\n'],
    ['a bare CR inside a value', 'GET /x HTTP/1.1\nHost: x\nX-A: a\rb\n\n'],
    ['obs-fold after a bare LF', 'GET /x HTTP/1.1\nHost: x\nX-A: a\n b\n\n'],
    ['CL with TE in a bare-LF head', 'POST /x HTTP/1.1\nHost: x\nContent-Length: 3\nTransfer-Encoding: chunked\n\n0\r\n\r\n'],
    ['a smuggled request behind a bare-LF empty line', 'GET /x HTTP/1.1\nHost: x\nContent-Length: 0\nTransfer-Encoding: chunked\n\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'],
  ]) {
    test(`${name}: 400 and closed`, async () => {
      const text = await raw(ours.port, bytes as string)
      assert.match(text, /^HTTP\/1\.1 400 /, text)
      assert.doesNotMatch(text, /smuggled/)
    })
  }
})
