import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, test } from 'node:test'
import { startOrigin } from './router-harness.js'
import { startVclRouter, type VclRouter } from './router-vcl-harness.js'
import { type RunningVarnishd, skipWithoutVarnishd, startVarnishd } from './vcl-varnishd.js'

// http_resp_hdr_len and http_resp_size, the parameters varnish Dockerfiles raise for backends
// with large heads: a field or a head past them fails the fetch (503), as in varnishd 7.1,
// with the defaults and with the values raised.

const vcl = (port: number) => `vcl 4.1;
backend default { .host = "127.0.0.1"; .port = "${port}"; }
`

function status(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false, maxHeaderSize: 256 * 1024 }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end()
  })
}

/** `/field/N`: one field of N bytes; `/head/N`: N fields of 2000 bytes each. */
const PATHS = ['/field/1000', '/field/7000', '/field/9000', '/field/15000', '/head/10', '/head/14', '/head/20']

describe('http_resp_hdr_len and http_resp_size against varnishd', { skip: skipWithoutVarnishd }, () => {
  const closers: Array<() => Promise<void>> = []
  const peers: Array<{ params: Record<string, string>; varnishd: RunningVarnishd; router: VclRouter }> = []
  before(async () => {
    const origin = await startOrigin({ after: (fn: () => Promise<void>) => closers.push(fn) } as never, (req, res) => {
      const [, kind, n] = (req.url ?? '/').split('/')
      const head: string[] = ['Cache-Control', 'no-store']
      if (kind === 'field') head.push('X-Big', 'x'.repeat(Number(n)))
      else for (let i = 0; i < Number(n); i++) head.push(`X-Part-${i}`, 'y'.repeat(2000))
      res.writeHead(200, head)
      res.end('ok')
    })
    for (const params of [{}, { http_resp_hdr_len: '16k', http_resp_size: '64k' }] as Array<Record<string, string>>) {
      const text = vcl(origin.address.port)
      const args = Object.entries(params).flatMap(([k, v]) => ['-p', `${k}=${v}`])
      peers.push({ params, varnishd: await startVarnishd(text, args), router: await startVclRouter(text, 'boot.vcl', params) })
    }
  })
  after(async () => {
    for (const p of peers) {
      await p.varnishd.stop()
      await p.router.stop()
    }
    for (const close of closers) await close()
  })

  test('the same fetches fail, with the defaults and with the limits raised', async () => {
    for (const p of peers) {
      const theirs: Record<string, number> = {}
      const ours: Record<string, number> = {}
      for (const path of PATHS) {
        theirs[path] = await status(p.varnishd.port, path)
        ours[path] = await status(p.router.port, path)
      }
      assert.deepEqual(ours, theirs, JSON.stringify(p.params))
    }
  })
})
