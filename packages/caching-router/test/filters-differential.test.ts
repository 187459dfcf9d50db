import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import { describe, test } from 'node:test'
import { get } from './router-harness.js'
import { differentialPair } from './differential-pair.js'
import { skipWithoutVarnishd } from './vcl-varnishd.js'

// beresp.filters and resp.filters as VCL reads them (varnish 7.1's default filter lists),
// through varnishd and the router on one VCL and origin: gzip'ed, plain, empty and
// otherwise-encoded bodies, do_esi / do_gzip / do_gunzip, clients with and without gzip,
// with a Range. Not vcl_synth: varnishd 7.1.1's child panics reading resp.filters there (the
// connection is reset and the child restarted), so there is nothing to compare with.

const vcl = (port: number) => `vcl 4.1;
backend default { .host = "127.0.0.1"; .port = "${port}"; }
sub vcl_backend_response {
  set beresp.http.x-bf0 = beresp.filters;
  if (bereq.url ~ "esi") { set beresp.do_esi = true; }
  if (bereq.url ~ "dogzip") { set beresp.do_gzip = true; }
  if (bereq.url ~ "dogunzip") { set beresp.do_gunzip = true; }
  set beresp.http.x-bf = beresp.filters;
}
sub vcl_deliver {
  set resp.http.x-rf = resp.filters;
}
`

const PAGE = '<p>a<esi:remove>gone</esi:remove>b</p>'
const PATHS = ['/plain', '/gz', '/esi-plain', '/esi-gz', '/dogzip-plain', '/dogzip-gz', '/dogunzip-gz', '/dogunzip-plain', '/esi-dogzip-plain', '/esi-dogunzip-gz', '/empty', '/br-coded']
const CLIENTS: Record<string, Record<string, string>> = {
  gzip: { 'Accept-Encoding': 'gzip' },
  plain: {},
  'gzip range': { 'Accept-Encoding': 'gzip', Range: 'bytes=0-1' },
  'plain range': { Range: 'bytes=0-1' },
}

describe('beresp.filters and resp.filters against varnishd', { skip: skipWithoutVarnishd }, () => {
  const pair = differentialPair(vcl, (req, res) => {
      const url = req.url ?? '/'
      if (url.includes('empty')) {
        res.writeHead(200, { 'Cache-Control': 'max-age=60', 'Content-Length': '0' })
        res.end()
      } else if (url.includes('-gz')) {
        const body = gzipSync(PAGE)
        res.writeHead(200, { 'Cache-Control': 'max-age=60', 'Content-Encoding': 'gzip', 'Content-Length': String(body.length) })
        res.end(body)
      } else if (url.includes('br-coded')) {
        res.writeHead(200, { 'Cache-Control': 'max-age=60', 'Content-Encoding': 'br', 'Content-Length': '4' })
        res.end('abcd')
      } else {
        res.writeHead(200, { 'Cache-Control': 'max-age=60', 'Content-Length': String(PAGE.length) })
        res.end(PAGE)
      }
    })

  test('the same lists in vcl_backend_response and vcl_deliver', async () => {
    const { varnishd, router } = pair()
    const seen = async (port: number) => {
      const out: Record<string, string> = {}
      for (const path of PATHS) {
        for (const [client, headers] of Object.entries(CLIENTS)) {
          // A body that fails on its way out (a gzip check) ends the connection: said as such.
          out[`${path} ${client}`] = await get(`http://127.0.0.1:${port}${path}`, { headers }).then(
            // Not the status: a Range on a gunzipped delivery is a documented difference.
            (r) => `bf0=${r.headers['x-bf0']} bf=${r.headers['x-bf']} rf=${r.headers['x-rf']}`,
            (err: Error) => `failed: ${err.message}`,
          )
        }
      }
      return out
    }
    const theirs = await seen(varnishd.port)
    const ours = await seen(router.port)
    const differ = Object.keys(theirs).filter((k) => ours[k] !== theirs[k])
    assert.deepEqual(
      Object.fromEntries(differ.map((k) => [k, ours[k]])),
      Object.fromEntries(differ.map((k) => [k, theirs[k]])),
    )
    // Not empty: the lists name filters.
    assert.match(theirs['/esi-gz plain'] ?? '', /bf=gunzip esi_gzip rf=esi/)
  })
})
