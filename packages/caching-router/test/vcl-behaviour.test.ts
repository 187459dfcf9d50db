import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { VclProgram } from '../src/vcl/index.js'
import { startVclRouter } from './router-vcl-harness.js'
import { type RunningVarnishd, startVarnishd, varnishInstalled } from './vcl-varnishd.js'

// The behaviour corpus for the router differential (issue 6): VCL files (routing, header
// rewrites, TTL overrides, synth, purge ACLs, hash changes, pipe) with request sequences and the
// outcomes real varnishd gives, checked here against varnishd itself. Each file must also compile
// with our compiler, and the same steps must hold for caching-router (the second target).
const DIR = fileURLToPath(new URL('../../test/fixtures/vcl/behaviour/', import.meta.url))

/** `hit`: X-Varnish carries two ids; `nohit`: one (miss, pass or synth); `pipe`: none. */
type Outcome = 'hit' | 'nohit' | 'pipe'

interface Step {
  readonly method?: string
  readonly url: string
  readonly headers?: Record<string, string>
  readonly status: number
  readonly outcome: Outcome
  /** Expected response headers; null means absent. */
  readonly expect?: Record<string, string | null>
  readonly body?: RegExp
}

interface Target {
  readonly name: string
  start(vcl: string): Promise<{ port: number; stop(): Promise<void> }>
}

// caching-router always runs the corpus; varnishd where installed (CI installs varnish), so
// the same steps hold for both.
const TARGETS: Target[] = [
  ...(varnishInstalled ? [{ name: 'varnishd', start: (vcl: string) => startVarnishd(vcl) as Promise<RunningVarnishd> }] : []),
  { name: 'caching-router', start: (vcl) => startVclRouter(vcl) },
]

const CORPUS: Record<string, Step[]> = {
  'routing.vcl': [
    { url: '/app.js', status: 200, outcome: 'nohit', expect: { 'x-backend': 'nginx', 'x-origin-count': '1' } },
    { url: '/app.js', status: 200, outcome: 'hit', expect: { 'x-backend': 'nginx', 'x-origin-count': '1' } },
    { url: '/', status: 200, outcome: 'nohit', expect: { 'x-backend': 'node' } },
    { url: '/socket.io/?EIO=4', status: 200, outcome: 'pipe', expect: { 'x-backend': 'node', 'x-saw-upgrade': '-' } },
    { url: '/chat', headers: { Upgrade: 'websocket', Connection: 'Upgrade' }, status: 200, outcome: 'pipe', expect: { 'x-backend': 'node', 'x-saw-upgrade': 'websocket' } },
    { method: 'POST', url: '/form', status: 200, outcome: 'nohit', expect: { 'x-origin-count': '1' } },
    { method: 'POST', url: '/form', status: 200, outcome: 'nohit', expect: { 'x-origin-count': '2' } },
  ],
  'headers.vcl': [
    {
      url: '/old/page?b=2&a=1',
      headers: { Cookie: 'x=1', 'X-Drop': '1' },
      status: 200,
      outcome: 'nohit',
      expect: {
        'x-fetched-url': '/new/page?a=1&b=2',
        'x-saw-proto': 'http',
        'x-saw-cookie': '-',
        'x-saw-drop': '-',
        'x-internal': null,
        'x-powered-by': null,
        'x-served-by': 'edge',
        'x-cache': 'MISS',
      },
    },
    { url: '/old/page?a=1&b=2', status: 200, outcome: 'hit', expect: { 'x-cache': 'HIT', 'x-origin-count': '1' } },
  ],
  'ttl.vcl': [
    { url: '/short/a', status: 200, outcome: 'nohit', expect: { 'x-origin-count': '1' } },
    { url: '/short/a', status: 200, outcome: 'nohit', expect: { 'x-origin-count': '2' } },
    { url: '/long/cookie', status: 200, outcome: 'nohit', expect: { 'set-cookie': null } },
    { url: '/long/cookie', status: 200, outcome: 'hit', expect: { 'x-hits': '1', 'x-origin-count': '1' } },
    { url: '/cookie', status: 200, outcome: 'nohit', expect: { 'x-origin-count': '1' } },
    { url: '/cookie', status: 200, outcome: 'nohit', expect: { 'x-origin-count': '2' } },
    { url: '/nocache', status: 200, outcome: 'nohit', expect: { 'x-origin-count': '1' } },
    { url: '/nocache', status: 200, outcome: 'nohit', expect: { 'x-origin-count': '2' } },
  ],
  'synth.vcl': [
    { url: '/teapot', status: 418, outcome: 'nohit', expect: { 'x-backend': null, 'content-type': 'text/plain; charset=utf-8' }, body: /^synth 418 I'm a teapot$/ },
    { url: '/moved/x', status: 301, outcome: 'nohit', expect: { location: '/here/x', 'x-backend': null } },
    { url: '/other', status: 200, outcome: 'nohit', expect: { 'x-backend': 'node' } },
  ],
  'purge.vcl': [
    { url: '/p', status: 200, outcome: 'nohit', expect: { 'x-origin-count': '1' } },
    { url: '/p', status: 200, outcome: 'hit' },
    { method: 'PURGE', url: '/p', status: 200, outcome: 'nohit', body: /200 Purged/ },
    { url: '/p', status: 200, outcome: 'nohit', expect: { 'x-origin-count': '2' } },
    { method: 'PURGEDENIED', url: '/p', status: 405, outcome: 'nohit' },
    { url: '/p', status: 200, outcome: 'hit', expect: { 'x-origin-count': '2' } },
  ],
  'hash.vcl': [
    { url: '/h', headers: { Cookie: 'a=1; lang=fr' }, status: 200, outcome: 'nohit', expect: { 'x-saw-lang': 'fr', 'x-saw-cookie': '-' } },
    { url: '/h', headers: { Cookie: 'lang=fr' }, status: 200, outcome: 'hit', expect: { 'x-saw-lang': 'fr' } },
    { url: '/h', status: 200, outcome: 'nohit', expect: { 'x-saw-lang': 'en', 'x-origin-count': '2' } },
    { url: '/h', headers: { Cookie: 'lang=fr' }, status: 200, outcome: 'hit', expect: { 'x-saw-lang': 'fr' } },
  ],
}

interface Origin {
  readonly port: number
  close(): Promise<void>
}

async function origin(name: string): Promise<Origin> {
  const counts = new Map<string, number>()
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/'
    const n = (counts.get(url) ?? 0) + 1
    counts.set(url, n)
    const h = req.headers
    const headers: Record<string, string> = {
      'X-Backend': name,
      'X-Origin-Count': String(n),
      'X-Saw-Proto': String(h['x-forwarded-proto'] ?? '-'),
      'X-Saw-Cookie': String(h.cookie ?? '-'),
      'X-Saw-Drop': String(h['x-drop'] ?? '-'),
      'X-Saw-Lang': String(h['x-lang'] ?? '-'),
      'X-Saw-Upgrade': String(h.upgrade ?? '-'),
      'X-Internal': 'secret',
      'X-Powered-By': 'origin',
      'Cache-Control': url === '/nocache' ? 'no-store' : 'max-age=60',
    }
    if (url.endsWith('cookie')) headers['Set-Cookie'] = 'a=1'
    req.resume()
    req.on('end', () => {
      res.writeHead(200, headers)
      res.end(`${name} ${req.method} ${url} #${n}`)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

function send(port: number, step: Step): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: step.method ?? 'GET', path: step.url, headers: { Host: 'example.com', ...step.headers }, agent: false },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end()
  })
}

function outcomeOf(headers: http.IncomingHttpHeaders): Outcome {
  const xv = headers['x-varnish']
  if (xv === undefined) return 'pipe'
  return String(xv).trim().split(/\s+/).length === 2 ? 'hit' : 'nohit'
}

describe('VCL behaviour corpus', () => {
  for (const [file, steps] of Object.entries(CORPUS)) {
    test(`${file} compiles with caching-router`, async () => {
      const text = (await readFile(`${DIR}${file}`, 'utf8')).replaceAll('NODE_PORT', '3000').replaceAll('NGINX_PORT', '8081')
      new VclProgram(file, { name: file, text })
    })

    for (const target of TARGETS) {
      test(`${file} on ${target.name}`, async (t) => {
        const [node, nginx] = await Promise.all([origin('node'), origin('nginx')])
        t.after(() => Promise.all([node.close(), nginx.close()]))
        const text = (await readFile(`${DIR}${file}`, 'utf8')).replaceAll('NODE_PORT', String(node.port)).replaceAll('NGINX_PORT', String(nginx.port))
        const running = await target.start(text)
        t.after(() => running.stop())
        for (const [i, step] of steps.entries()) {
          const r = await send(running.port, step)
          const where = `step ${i + 1}: ${step.method ?? 'GET'} ${step.url}`
          assert.equal(r.status, step.status, where)
          assert.equal(outcomeOf(r.headers), step.outcome, where)
          for (const [name, value] of Object.entries(step.expect ?? {})) {
            assert.equal(r.headers[name] ?? null, value, `${where}: ${name}`)
          }
          if (step.body) assert.match(r.body, step.body, where)
        }
      })
    }
  }
})
