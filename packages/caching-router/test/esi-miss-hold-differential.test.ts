import assert from 'node:assert/strict'
import http from 'node:http'
import { describe, test } from 'node:test'
import { differentialPair } from './differential-pair.js'
import { skipWithoutVarnishd } from './vcl-varnishd.js'

// Does a page with beresp.do_esi stream on its first miss? Measured with varnishd 7.1.1: no.
// Its VDP "esi" is pushed only when the object has OA_ESIDATA, which VEP leaves at the end
// of the fetch, so the client's head comes once the origin sent the page's last byte, while
// a page without do_esi streams at once. Both hold for the router too. The order of events is
// what is compared: the origin ends a page either when the client already has the head
// (it streamed) or, at the latest, after 2 s (it did not).

const vcl = (port: number) => `vcl 4.1;
backend default { .host = "127.0.0.1"; .port = "${port}"; }
sub vcl_backend_response {
  if (bereq.url ~ "^/esi") { set beresp.do_esi = true; }
}
`

/** Waiters for "the client has the head of PATH", by path. */
const heads = new Map<string, () => void>()

function headThenEnd(port: number, path: string): Promise<{ headFirst: boolean; body: string }> {
  return new Promise((resolve, reject) => {
    let ended = false
    ends.set(path, () => {
      ended = true
    })
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        const headFirst = !ended
        heads.get(path)?.()
        let body = ''
        res.setEncoding('latin1')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () => resolve({ headFirst, body }))
      })
      .on('error', reject)
  })
}

/** "The origin sent the last byte of PATH", by path. */
const ends = new Map<string, () => void>()

describe('the first miss of an ESI page against varnishd', { skip: skipWithoutVarnishd }, () => {
  const pair = differentialPair(vcl, (req, res) => {
      const path = req.url ?? '/'
      if (path.startsWith('/frag')) {
        res.writeHead(200, { 'Cache-Control': 'max-age=60' })
        res.end('FRAG')
        return
      }
      res.writeHead(200, { 'Cache-Control': 'max-age=60' })
      res.write(`<html>first ${'x'.repeat(16 * 1024)}<esi:include src="/frag"/> middle `)
      const end = () => {
        clearTimeout(timer)
        heads.delete(path)
        ends.get(path)?.()
        res.end('last</html>')
      }
      const timer = setTimeout(end, 2000)
      heads.set(path, end)
    })

  test('an ESI page is held until its body is in; a page without do_esi streams', async () => {
    const { varnishd, router } = pair()
    const seen: Record<string, unknown> = {}
    for (const [name, port] of [
      ['varnishd', varnishd.port],
      ['router', router.port],
    ] as const) {
      const esi = await headThenEnd(port, `/esi-${name}`)
      const plain = await headThenEnd(port, `/plain-${name}`)
      seen[name] = { esiHeadBeforeEnd: esi.headFirst, esiBody: esi.body.replace(/x+/, 'x*'), plainHeadBeforeEnd: plain.headFirst }
    }
    assert.deepEqual(seen.router, seen.varnishd)
    assert.deepEqual(seen.varnishd, { esiHeadBeforeEnd: false, esiBody: '<html>first x*FRAG middle last</html>', plainHeadBeforeEnd: true })
  })
})
