import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { type RawResponse, rawExchange } from './raw-client.js'
import { startVclRouter, type VclRouter } from './router-vcl-harness.js'
import { type RunningVarnishd, startVarnishd, varnishInstalled } from './vcl-varnishd.js'

// What a client sends, side by side with varnishd 7.1 on the same builtin-only VCL and the
// same origin: Range (hits, misses still streaming with and without Content-Length,
// hit-for-miss, pass, HEAD, If-Range), and what varnishd's http1_dissect does before vcl_recv
// (417 / 100 Continue for Expect, absolute-form request-targets).

const vcl = (port: number) => `vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "${port}"; }
`

const BODY = 'hello world 0123456789'

function originHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  req.resume()
  const path = (req.url ?? '/').split('?')[0] as string
  const cacheControl = path.includes('private') ? 'private' : 'max-age=60'
  if (path.startsWith('/echo')) {
    res.writeHead(200, { 'Cache-Control': 'no-store' })
    res.end(`${req.url} host=${req.headers.host}`)
    return
  }
  if (path.startsWith('/via')) {
    res.writeHead(200, { Via: '1.1 upstream', Age: '5', 'Cache-Control': cacheControl, 'Content-Length': 2 })
    res.end('ok')
    return
  }
  if (path.startsWith('/names')) {
    // The request's field names as the origin got them (values differ: xids, ports).
    const names: string[] = []
    for (let i = 0; i < req.rawHeaders.length; i += 2) names.push((req.rawHeaders[i] as string).toLowerCase())
    res.writeHead(200, { 'Content-Length': Buffer.byteLength(names.join(' ')), Connection: 'close' })
    res.end(names.join(' '))
    return
  }
  if (path.startsWith('/stream')) {
    // The head and the first half now, the rest a moment later: a miss delivers while the
    // body still arrives. The origin itself never honours Range.
    const body = '0123456789'.repeat(10)
    const headers: Record<string, string | number> = { 'Cache-Control': cacheControl }
    if (!path.includes('nocl')) headers['Content-Length'] = body.length
    res.writeHead(200, headers)
    res.write(body.slice(0, 50))
    setTimeout(() => res.end(body.slice(50)), 50)
    return
  }
  if (path.startsWith('/empty')) {
    res.writeHead(200, { 'Cache-Control': cacheControl, 'Content-Length': 0 })
    res.end()
    return
  }
  if (path.startsWith('/missing')) {
    res.writeHead(404, { 'Cache-Control': cacheControl, 'Content-Length': 8 })
    res.end('not here')
    return
  }
  // With Content-Length: how varnishd sends a small chunked body depends on whether it came in
  // the same read as the head (see the README).
  res.writeHead(200, {
    'Content-Length': BODY.length,
    'Cache-Control': cacheControl,
    ETag: '"v1"',
    'Last-Modified': 'Mon, 01 Jan 2024 00:00:00 GMT',
    // varnishd forces its own Accept-Ranges on a 200 it caches; a backend's gives way.
    'Accept-Ranges': 'none',
  })
  res.end(BODY)
}

/** What a client acts on in a ranged answer. */
function summary(r: RawResponse | undefined): Record<string, unknown> {
  if (r === undefined) return { missing: true }
  const h = r.headers
  return {
    status: r.status,
    reason: r.reason,
    contentRange: h['content-range'],
    contentLength: h['content-length'],
    chunked: h['transfer-encoding'] === 'chunked',
    acceptRanges: h['accept-ranges'],
    body: r.body,
  }
}

// [name, method, path, extra fields]; each request goes on its own connection, in this order,
// to both servers, so both see the same misses and hits.
const CASES: Array<[string, string, string, string[]]> = [
  ['miss streaming with Content-Length', 'GET', '/stream?1', ['Range: bytes=3-7']],
  ['hit of that object', 'GET', '/stream?1', ['Range: bytes=95-']],
  ['miss streaming without Content-Length: the whole body', 'GET', '/stream-nocl?1', ['Range: bytes=2-4']],
  ['miss streaming without Content-Length, invalid range: 416', 'GET', '/stream-nocl?2', ['Range: bytes=4-2']],
  ['hit of the object that had no Content-Length', 'GET', '/stream-nocl?1', ['Range: bytes=2-4']],
  ['miss of a small object', 'GET', '/obj?1', ['Range: bytes=0-4']],
  ['suffix', 'GET', '/obj?1', ['Range: bytes=-5']],
  ['last beyond the end', 'GET', '/obj?1', ['Range: bytes=3-1000']],
  ['first beyond the end', 'GET', '/obj?1', ['Range: bytes=22-']],
  ['two ranges', 'GET', '/obj?1', ['Range: bytes=0-1,3-4']],
  ['last before first', 'GET', '/obj?1', ['Range: bytes=5-2']],
  ['no number', 'GET', '/obj?1', ['Range: bytes=-']],
  ['suffix of zero', 'GET', '/obj?1', ['Range: bytes=-0']],
  ['space after =', 'GET', '/obj?1', ['Range: bytes= 0-4']],
  ['no =', 'GET', '/obj?1', ['Range: bytes']],
  ['unit in capitals, trailing space', 'GET', '/obj?1', ['Range: Bytes=0-4 ']],
  ['If-Range with the ETag', 'GET', '/obj?1', ['Range: bytes=0-3', 'If-Range: "v1"']],
  ['If-Range with another ETag: the whole body', 'GET', '/obj?1', ['Range: bytes=0-3', 'If-Range: "v2"']],
  ['If-Range weak: the whole body', 'GET', '/obj?1', ['Range: bytes=0-3', 'If-Range: W/"v1"']],
  ['If-Range with Last-Modified', 'GET', '/obj?1', ['Range: bytes=0-3', 'If-Range: Mon, 01 Jan 2024 00:00:00 GMT']],
  ['If-Range with another date: the whole body', 'GET', '/obj?1', ['Range: bytes=0-3', 'If-Range: Mon, 01 Jan 2024 00:00:01 GMT']],
  ['If-Range that does not hold, invalid range: the whole body', 'GET', '/obj?1', ['Range: zz', 'If-Range: "v2"']],
  ['HEAD', 'HEAD', '/obj?1', ['Range: bytes=0-4']],
  ['HEAD, invalid range', 'HEAD', '/obj?1', ['Range: bytes=9-1']],
  ['a 404 is not ranged and has no Accept-Ranges', 'GET', '/missing?1', ['Range: bytes=0-1']],
  ['its hit', 'GET', '/missing?1', ['Range: bytes=0-1']],
  ['empty object: 416', 'GET', '/empty?1', ['Range: bytes=0-4']],
  ['its hit', 'GET', '/empty?1', ['Range: bytes=0-4']],
  ['hit-for-miss (private): ranged, with Accept-Ranges', 'GET', '/private?1', ['Range: bytes=0-4']],
  ['hit-for-miss again', 'GET', '/private?1', ['Range: bytes=3-6']],
  ['hit-for-miss streaming', 'GET', '/stream-private?1', ['Range: bytes=60-69']],
  ['hit-for-miss, first beyond the end', 'GET', '/private?1', ['Range: bytes=50-']],
  ['pass: ranged, no Accept-Ranges', 'GET', '/obj?pass', ['Range: bytes=0-4', 'Authorization: x']],
  ['pass streaming', 'GET', '/stream?pass', ['Range: bytes=10-14', 'Authorization: x']],
  ['no Range: Accept-Ranges on a hit', 'GET', '/obj?1', []],
]

describe('client input: caching-router vs varnishd', { skip: varnishInstalled ? false : 'varnishd/varnishadm not installed' }, () => {
  let origin: http.Server
  let varnishd: RunningVarnishd
  let router: VclRouter

  before(async () => {
    origin = http.createServer(originHandler)
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve))
    const port = (origin.address() as AddressInfo).port
    ;[varnishd, router] = await Promise.all([startVarnishd(vcl(port)), startVclRouter(vcl(port))])
  })

  after(async () => {
    await Promise.all([varnishd?.stop(), router?.stop()])
    origin.closeAllConnections()
    await new Promise<void>((resolve) => origin.close(() => resolve()))
  })

  const ask = async (port: number, method: string, path: string, fields: string[]) => {
    const head = `${method} ${path} HTTP/1.1\r\nHost: example.com\r\n${fields.map((f) => `${f}\r\n`).join('')}\r\n`
    const { responses } = await rawExchange(port, head, { closeAfter: 1, head: method === 'HEAD' })
    return summary(responses[0])
  }

  /** `bytes` to varnishd and to us, one response read from each: [theirs, ours] as `view` sees them. */
  const both = <T>(bytes: string, view: (responses: RawResponse[], closed: boolean) => T): Promise<T[]> =>
    Promise.all(
      [varnishd.port, router.port].map(async (port) => {
        const { responses, closed } = await rawExchange(port, bytes, { closeAfter: 1 })
        return view(responses, closed)
      }),
    )

  test('the same status, Content-Range, Content-Length, Accept-Ranges and body, case by case', async () => {
    for (const [name, method, path, fields] of CASES) {
      const theirs = await ask(varnishd.port, method, path, fields)
      const ours = await ask(router.port, method, path, fields)
      assert.deepEqual(ours, theirs, `${name}: ${method} ${path} ${fields.join(' | ')}`)
    }
  })

  test('Expect other than 100-continue: a bare 417 and the connection closed, before any VCL', async () => {
    for (const expect of ['foo', '', '100-continue, foo']) {
      for (const port of [varnishd.port, router.port]) {
        const { responses, closed } = await rawExchange(port, `GET /obj?1 HTTP/1.1\r\nHost: example.com\r\nExpect: ${expect}\r\n\r\n`)
        assert.deepEqual(
          responses.map((r) => `${r.status} ${r.reason} ${r.body}`),
          ['417 Expectation Failed '],
          `Expect: ${expect} on ${port === router.port ? 'ours' : 'varnishd'}`,
        )
        assert.equal(closed, true)
      }
    }
  })

  test('Expect: 100-continue: 100 Continue on HTTP/1.1 whatever the method (none on 1.0, none when the body came along), then the answer, kept alive', async () => {
    const requests = [
      'GET /obj?1 HTTP/1.1\r\nHost: example.com\r\nExpect: 100-Continue\r\n\r\n',
      // The body came with the head: the client is not waiting, no 100 Continue.
      'POST /obj?post HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi',
      'GET /obj?1 HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n',
    ]
    for (const bytes of requests) {
      const [theirs, ours] = await both(bytes, (responses, closed) => ({ statuses: responses.map((r) => r.status), closed }))
      assert.deepEqual(ours, theirs, bytes)
    }
  })

  test('framing varnishd refuses (repeated or listed Content-Length, CL with TE, TE not ending in chunked): 400, closed', async () => {
    const requests = [
      'POST /obj?cl HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc',
      'POST /obj?cl HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc',
      'POST /obj?cl HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST /obj?cl HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
      'POST /obj?cl HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc',
    ]
    for (const bytes of requests) {
      for (const port of [varnishd.port, router.port]) {
        const { responses, closed } = await rawExchange(port, bytes)
        assert.deepEqual({ statuses: responses.map((r) => r.status), closed }, { statuses: [400], closed: true }, `${port === router.port ? 'ours' : 'varnishd'}: ${bytes}`)
      }
    }
  })

  test('head limits at the default parameters: a URL longer than http_req_hdr_len is served; past http_max_hdr lines, refused', async () => {
    const fields = (n: number) => Array.from({ length: n }, (_, i) => `X-F${i}: v\r\n`).join('')
    const requests: Array<[string, number]> = [
      [`GET /obj?${'u'.repeat(8300)} HTTP/1.1\r\nHost: a\r\n\r\n`, 200],
      // 58 fields with Host: the most varnishd takes (64 lines less the request line's five,
      // less the X-Forwarded-For it adds).
      [`GET /obj?1 HTTP/1.1\r\nHost: a\r\n${fields(57)}\r\n`, 200],
      // varnishd says 400, we say 431 (RFC 6585).
      [`GET /obj?1 HTTP/1.1\r\nHost: a\r\n${fields(59)}\r\n`, 400],
    ]
    for (const [bytes, status] of requests) {
      const [theirs, ours] = await both(bytes, (responses) => (responses[0]?.status ?? 0) >= 400)
      assert.equal(theirs, status >= 400, `varnishd: ${bytes.slice(0, 60)}`)
      assert.equal(ours, theirs, bytes.slice(0, 60))
    }
  })

  test('pipe (builtin.vcl pipes an unknown method): the backend gets X-Varnish and Connection: close', async () => {
    const [theirs, ours] = await both('PURGE /names HTTP/1.1\r\nHost: a\r\nX-Client: 1\r\n\r\n', (responses) => responses[0]?.body)
    assert.equal(ours, theirs)
  })

  test("the backend's Via stays ahead of ours; its Age is delivered on a hit, a hit-for-miss and a pass", async () => {
    const view = (responses: RawResponse[]) => {
      const h = responses[0]?.headers ?? {}
      return { via: h.via?.replace(/, 1\.1 .*$/, ', ours'), age: h.age }
    }
    for (const [path, fields] of [
      ['/via?1', ''],
      ['/via?1', ''],
      ['/via-private?1', ''],
      ['/via?pass', 'Authorization: x\r\n'],
    ]) {
      const [theirs, ours] = await both(`GET ${path} HTTP/1.1\r\nHost: a\r\n${fields}\r\n`, view)
      assert.deepEqual(ours, theirs, path)
    }
  })

  test('absolute-form: the path is the URL and the authority the only Host; a target no backend can take is a 400', async () => {
    const requests = [
      'GET http://abs.example:81/echo?x HTTP/1.1\r\nHost: other.example\r\n\r\n',
      'GET HTTP://Abs.Example/echo HTTP/1.1\r\nHost: other.example\r\n\r\n',
      'GET http://abs.example/echo HTTP/1.0\r\n\r\n',
      // varnishd forwards it and the origin (node) refuses it; we refuse it ourselves.
      'GET echo HTTP/1.1\r\nHost: a\r\n\r\n',
    ]
    for (const bytes of requests) {
      const [theirs, ours] = await both(bytes, (responses) => responses.map((r) => `${r.status} ${r.body}`))
      assert.deepEqual(ours, theirs, bytes)
    }
  })
})
