import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import http, { STATUS_CODES } from 'node:http'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createRequestContext, startResponse, VclProgram } from '../src/vcl/index.js'
import { startVclRouter } from './router-vcl-harness.js'
import { type RunningVarnishd, startVarnishd, varnishInstalled } from './vcl-varnishd.js'

// Differential semantics: the same VCL runs in the real varnishd and in our compiler, and the
// same requests must produce the same X-* headers (regsub, std.*, conversions, ACLs, regexes).
// The VCL answers from vcl_synth, so no backend is involved on either side.
const FILE = fileURLToPath(new URL('../../test/fixtures/vcl/semantics/expressions.vcl', import.meta.url))

interface Case {
  readonly method: string
  readonly url: string
  readonly headers: Record<string, string>
}

const CASES: Case[] = [
  { method: 'GET', url: '/api/users?utm_source=x&b=1', headers: { Host: 'Example.COM', 'X-In': 'abcD', 'X-Num': '12', Cookie: 'a=1; lang=fr; z=2' } },
  { method: 'GET', url: '/img/Photo.JPG', headers: { Host: 'example.com', 'X-In': 'xyz', 'X-Num': 'abc' } },
  { method: 'GET', url: '/', headers: { Host: 'h' } },
  { method: 'GET', url: '/a/b/c?utm_medium=m&utm_source=s', headers: { Host: 'h', 'X-Num': '-4', 'X-In': 'ABCD' } },
  { method: 'GET', url: '/Mixed/Case.jpeg?x=1', headers: { Host: 'Example.com:8080', 'X-In': 'ABCd', 'X-Num': '+5', Cookie: 'lang=de' } },
  { method: 'GET', url: '/n', headers: { Host: 'h', 'X-Num': ' 7' } },
  { method: 'GET', url: '/q?b=2&a=1&&c=3&a=0', headers: { Host: 'h', 'X-Dur-In': '1.5m', 'X-Num': '2.25' } },
  { method: 'GET', url: '/q?', headers: { Host: 'h', 'X-Dur-In': '10ms' } },
  { method: 'GET', url: '/q?&&', headers: { Host: 'h', 'X-Dur-In': '3x' } },
  { method: 'GET', url: '/q?z', headers: { Host: 'h', 'X-Dur-In': '2d', 'X-Num': '-3' } },
  { method: 'GET', url: '/n', headers: { Host: 'h', 'X-Num': '0012' } },
  { method: 'GET', url: '/n', headers: { Host: 'h', 'X-Num': '1234567890123456' } },
  { method: 'HEAD', url: '/api/x.png', headers: { Host: 'H', 'X-Num': '10', 'X-In': '' } },
]

function send(port: number, c: Case): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: c.method, path: c.url, headers: c.headers, agent: false }, (res) => {
      res.resume()
      res.on('end', () => {
        const out: Record<string, string> = {}
        for (const [k, v] of Object.entries(res.headers)) if (k.startsWith('x-') && k !== 'x-varnish') out[k] = String(v)
        out.status = String(res.statusCode)
        resolve(out)
      })
    })
    req.on('error', reject)
    req.end()
  })
}

function ours(program: VclProgram, c: Case): Record<string, string> {
  const raw = Object.entries(c.headers).flat()
  const ip = { address: '127.0.0.1', port: 40000, family: 4 as const }
  const ctx = createRequestContext({ method: c.method, url: c.url, proto: 'HTTP/1.1', headers: raw, client: ip, local: ip, xid: '2' })
  const r = program.run('recv', ctx)
  assert.equal(r.action, 'synth')
  const status = r.status ?? 503
  startResponse(ctx, { status, reason: r.reason ?? STATUS_CODES[status] ?? 'Unknown', headers: [] })
  assert.equal(program.run('synth', ctx).action, 'deliver')
  const out: Record<string, string> = {}
  const h = ctx.resp?.http.toRaw() ?? []
  for (let i = 0; i < h.length; i += 2) {
    const name = (h[i] as string).toLowerCase()
    if (name.startsWith('x-')) out[name] = h[i + 1] as string
  }
  out.status = String(ctx.resp?.status)
  return out
}

describe('VCL semantics: caching-router vs varnishd on the same requests', { skip: varnishInstalled ? false : 'varnishd/varnishadm not installed' }, () => {
  let varnishd: RunningVarnishd | undefined

  test('start varnishd on 127.0.0.1:0 with the VCL', async () => {
    varnishd = await startVarnishd(await readFile(FILE, 'utf8'))
  })

  test('same X-* headers for every request', async () => {
    const program = new VclProgram('semantics', { name: FILE, text: await readFile(FILE, 'utf8') })
    for (const c of CASES) {
      const theirs = await send(varnishd?.port ?? 0, c)
      assert.ok(Object.keys(theirs).length > 20, 'varnishd answered with the X-* headers')
      assert.deepEqual(ours(program, c), theirs, `${c.method} ${c.url}`)
    }
  })

  test('the router running the same VCL answers the same over HTTP', async (t) => {
    const router = await startVclRouter(await readFile(FILE, 'utf8'))
    t.after(() => router.stop())
    for (const c of CASES) {
      const theirs = await send(varnishd?.port ?? 0, c)
      assert.deepEqual(await send(router.port, c), theirs, `${c.method} ${c.url}`)
    }
  })

  test('stop varnishd', async () => {
    await varnishd?.stop()
  })
})
