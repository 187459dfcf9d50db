import assert from 'node:assert/strict'
import http, { STATUS_CODES } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, test } from 'node:test'
import { startBackendRequest, startBackendResponse, startResponse, VclProgram } from '../src/vcl/index.js'
import { startVclRouter, type VclRouter } from './router-vcl-harness.js'
import { type RunningVarnishd, startVarnishd, varnishInstalled } from './vcl-varnishd.js'

// Differential on the backend side: the same VCL runs in varnishd and in our compiler against the
// same loopback origin, one request per URL (no cache hits), comparing status, X-* headers and
// body. Our side is driven through varnish's steps by a few lines below (the router does this
// for real); the TTL fed to beresp is the RFC one for these simple responses (max-age or
// varnish's default_ttl of 120 s).

const vcl = (port: number) => `vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "${port}"; }

sub vcl_recv {
    if (req.url ~ "^/pass/") {
        return (pass);
    }
    set req.http.X-Recv = "seen";
    unset req.http.Cookie;
}

sub vcl_backend_fetch {
    set bereq.http.X-Fetch = bereq.method + " " + bereq.url;
    if (bereq.url ~ "^/rewrite/") {
        set bereq.url = regsub(bereq.url, "^/rewrite", "/ok");
    }
}

sub vcl_backend_response {
    set beresp.http.X-TTL = beresp.ttl;
    set beresp.http.X-Grace = beresp.grace;
    set beresp.http.X-Keep = beresp.keep;
    set beresp.http.X-Uncacheable = beresp.uncacheable;
    set beresp.http.X-Status = beresp.status + " " + beresp.reason;
    if (beresp.status == 404) {
        set beresp.status = 410;
        set beresp.reason = "Gone";
    }
    unset beresp.http.X-Secret;
}

sub vcl_deliver {
    set resp.http.X-Deliver = resp.status + " " + resp.reason;
}
`

function originHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const saw = `${req.method} ${req.url} recv=${req.headers['x-recv'] ?? '-'} fetch=${req.headers['x-fetch'] ?? '-'} cookie=${req.headers.cookie ?? '-'}`
  const headers: Record<string, string> = { 'X-Saw': saw, 'X-Secret': 'hidden', 'Content-Type': 'text/plain' }
  let status = 200
  if (req.url?.startsWith('/ok') || req.url?.startsWith('/pass/')) headers['Cache-Control'] = 'max-age=60'
  if (req.url === '/setcookie') headers['Set-Cookie'] = 'a=1'
  if (req.url === '/private') headers['Cache-Control'] = 'private'
  if (req.url === '/missing') status = 404
  res.writeHead(status, headers)
  res.end(`body of ${req.url}\n`)
}

interface Outcome {
  status: number
  headers: Record<string, string>
  body: string
}

function xHeaders(raw: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase()
    if (name.startsWith('x-') && name !== 'x-varnish') out[name] = raw[i + 1] as string
  }
  return out
}

function request(port: number, method: string, path: string, headers: string[]): Promise<Outcome & { raw: string[] }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        body += c
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: xHeaders(res.rawHeaders), body, raw: res.rawHeaders }))
    })
    req.on('error', reject)
    req.end()
  })
}

function ttlOf(raw: string[]): number {
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() === 'cache-control') {
      const m = /max-age=(\d+)/.exec(raw[i + 1] as string)
      if (m) return Number(m[1])
    }
  }
  return 120
}

async function ours(program: VclProgram, originPort: number, method: string, url: string, headers: string[]): Promise<Outcome> {
  const ip = { address: '127.0.0.1', port: 40000, family: 4 as const }
  const ctx = program.newRequest({ method, url, proto: 'HTTP/1.1', headers, client: ip, local: ip, xid: '2' })
  const recv = program.run('recv', ctx).action
  const uncacheable = recv === 'pass'
  if (!uncacheable) {
    assert.equal(recv, 'hash')
    assert.equal(program.run('hash', ctx).action, 'lookup')
    assert.equal(program.run('miss', ctx).action, 'fetch')
  } else assert.equal(program.run('pass', ctx).action, 'fetch')
  const bereq = startBackendRequest(ctx, { xid: '3', uncacheable })
  assert.equal(program.run('backend_fetch', ctx).action, 'fetch')
  const up = await request(originPort, bereq.method, bereq.url, bereq.http.toRaw())
  startBackendResponse(ctx, { status: up.status, reason: STATUS_CODES[up.status] ?? '', headers: up.raw, ttl: ttlOf(up.raw), grace: 10, keep: 0 })
  assert.equal(program.run('backend_response', ctx).action, 'deliver')
  const beresp = ctx.beresp as NonNullable<typeof ctx.beresp>
  startResponse(ctx, { status: beresp.status, reason: beresp.reason, headers: beresp.http.clone() })
  assert.equal(program.run('deliver', ctx).action, 'deliver')
  const resp = ctx.resp as NonNullable<typeof ctx.resp>
  return { status: resp.status, headers: xHeaders(resp.http.toRaw()), body: method === 'HEAD' ? '' : up.body }
}

const CASES: [string, string, string[]][] = [
  ['GET', '/ok', ['Host', 'example.com', 'Cookie', 'session=1']],
  ['GET', '/rewrite/page', ['Host', 'example.com']],
  ['GET', '/missing', ['Host', 'example.com']],
  ['GET', '/setcookie', ['Host', 'example.com']],
  ['GET', '/private', ['Host', 'example.com']],
  ['GET', '/pass/thing', ['Host', 'example.com', 'Cookie', 'session=2']],
  ['POST', '/pass/form', ['Host', 'example.com', 'Content-Length', '0']],
  // A HEAD miss is fetched with GET (the object is stored whole); a HEAD pass keeps HEAD.
  ['HEAD', '/ok-head', ['Host', 'example.com']],
  ['HEAD', '/pass/head', ['Host', 'example.com']],
]

describe('VCL fetch differential: caching-router vs varnishd', { skip: varnishInstalled ? false : 'varnishd/varnishadm not installed' }, () => {
  let origin: http.Server | undefined
  let originPort = 0
  let varnishd: RunningVarnishd | undefined
  let program: VclProgram | undefined
  let router: VclRouter | undefined

  test('start the origin and varnishd', async () => {
    origin = http.createServer(originHandler)
    await new Promise<void>((resolve) => origin?.listen(0, '127.0.0.1', resolve))
    originPort = (origin.address() as AddressInfo).port
    program = new VclProgram('fetch', { name: 'fetch.vcl', text: vcl(originPort) })
    varnishd = await startVarnishd(vcl(originPort))
    router = await startVclRouter(vcl(originPort))
  })

  for (const [method, url, headers] of CASES) {
    test(`${method} ${url}: same status, X-* headers and body`, async () => {
      const theirs = await request(varnishd?.port ?? 0, method, url, headers)
      const mine = await ours(program as VclProgram, originPort, method, url, headers)
      assert.deepEqual(mine, { status: theirs.status, headers: theirs.headers, body: theirs.body })
      // And the router running the VCL, over HTTP (a new URL each time for varnishd too: no hits).
      const routed = await request(router?.port ?? 0, method, url, headers)
      assert.deepEqual({ status: routed.status, headers: routed.headers, body: routed.body }, { status: theirs.status, headers: theirs.headers, body: theirs.body })
    })
  }

  test('stop varnishd and the origin', async () => {
    await varnishd?.stop()
    await router?.stop()
    await new Promise<void>((resolve) => {
      if (!origin) return resolve()
      origin.close(() => resolve())
      origin.closeAllConnections()
    })
  })
})
