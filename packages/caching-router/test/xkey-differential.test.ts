import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, test } from 'node:test'
import { startOrigin } from './router-harness.js'
import { startVclRouter, type VclRouter } from './router-vcl-harness.js'
import { type RunningVarnishd, skipWithoutVarnishd, startVarnishd } from './vcl-varnishd.js'

// `import xkey;` through varnishd 7.1 with Debian's varnish-modules and the router, with one
// VCL and origin: which objects xkey.purge and xkey.softpurge reach (their counts and what
// the next requests get), keys from `xkey` and `X-HashTwo`, lists separated by spaces or
// commas, repeated fields, and a field with thousands of keys.

const vcl = (port: number) => `vcl 4.1;
import xkey;
backend default { .host = "127.0.0.1"; .port = "${port}"; }
sub vcl_recv {
  if (req.method == "PURGE") { return (synth(200, "purged " + xkey.purge(req.http.Keys))); }
  if (req.method == "SOFTPURGE") { return (synth(200, "softpurged " + xkey.softpurge(req.http.Keys))); }
}
`

/** Each path's key fields (raw header pairs). */
const KEYED: Record<string, string[]> = {
  '/a': ['xkey', 'k1 k2'],
  '/b': ['xkey', 'k2'],
  '/c': ['X-HashTwo', 'k3'],
  '/d': ['xkey', 'k1,k4'],
  '/e': ['xkey', 'k5', 'xkey', 'k6  k7'],
  '/f': ['xkey', Array.from({ length: 1200 }, (_, i) => `m${i}`).join(' ')],
  // Past varnishd's http_resp_hdr_len (8k): a 503 from both, nothing stored.
  '/h': ['xkey', Array.from({ length: 3000 }, (_, i) => `many${i}`).join(' ')],
  '/g': [],
}

const STEPS: Array<[method: string, keys?: string]> = [
  ['GET'],
  ['GET'],
  ['PURGE', 'k2'],
  ['GET'],
  ['PURGE', 'k3 k4'],
  ['GET'],
  ['PURGE', 'k6,k1'],
  ['GET'],
  ['PURGE', 'm1199'],
  ['PURGE', 'many2999'],
  ['GET'],
  ['SOFTPURGE', 'k5'],
  ['PURGE', 'nothing'],
  ['PURGE', ''],
  ['PURGE', 'k7'],
  ['GET'],
]

function send(port: number, method: string, path: string, keys?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { Host: 'xkey.test' }
    if (keys !== undefined) headers.Keys = keys
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('latin1')
      res.on('data', (c: string) => {
        body += c
      })
      // Guru meditation pages differ in their XID only.
      res.on('end', () =>
        resolve(method === 'GET' ? `${res.statusCode} ${body.replace(/XID: \d+/, 'XID: n')}` : `${res.statusCode} ${res.statusMessage}`),
      )
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

describe('xkey against varnishd with varnish-modules', { skip: skipWithoutVarnishd }, () => {
  const peers: Array<{ varnishd: RunningVarnishd; router: VclRouter }> = []
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    // Each peer has its own origin: its bodies count that peer's fetches.
    for (let i = 0; i < 2; i++) {
      const fetched = new Map<string, number>()
      const origin = await startOrigin({ after: (fn: () => Promise<void>) => closers.push(fn) } as never, (req, res) => {
        const url = req.url ?? '/'
        const n = (fetched.get(url) ?? 0) + 1
        fetched.set(url, n)
        const fields = KEYED[url] ?? []
        const head: string[] = ['Cache-Control', 'max-age=60', ...fields]
        res.writeHead(200, head)
        res.end(`${url} fetch ${n}`)
      })
      const text = vcl(origin.address.port)
      if (i === 0) peers.push({ varnishd: await startVarnishd(text), router: undefined as never })
      else (peers[0] as { router: VclRouter }).router = await startVclRouter(text)
    }
  })
  after(async () => {
    for (const p of peers) {
      await p.varnishd.stop()
      await p.router.stop()
    }
    for (const close of closers) await close()
  })

  test('purge and softpurge reach the same objects, with the same counts', async () => {
    const peer = peers[0]
    assert.ok(peer)
    const run = async (port: number) => {
      const out: string[] = []
      for (const [method, keys] of STEPS) {
        if (method === 'GET') for (const path of Object.keys(KEYED)) out.push(`GET ${path}: ${await send(port, 'GET', path)}`)
        else out.push(`${method} ${keys}: ${await send(port, method, '/', keys)}`)
      }
      return out
    }
    assert.deepEqual(await run(peer.router.port), await run(peer.varnishd.port))
  })
})
