import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { rawExchange } from './raw-client.js'
import { differentialPair } from './differential-pair.js'
import { skipWithoutVarnishd } from './vcl-varnishd.js'

// req_top.* read by the fragments' VCL (varnish 7.1's vcl_var.rst: req_top.http.*, method,
// proto, time, url), through varnishd and the router with one VCL and origin. The fragments
// are vcl_synth pages whose bodies say what their VCL read, so the assembled page carries it:
// req_top.time is the top request's req.time at every level, kept across the top request's
// restart, and equal to what the top request put in a header (varnish's e00030).

const vcl = (port: number) => `vcl 4.1;
backend default { .host = "127.0.0.1"; .port = "${port}"; }
sub vcl_recv {
  if (req.esi_level == 0) {
    if (req.restarts == 0) {
      set req.http.top-time = req_top.time;
      set req.http.foo = "bar " + req.url;
      if (req.url ~ "restart") {
        set req.http.t0 = req.time;
        return (restart);
      }
    } elsif (req.http.t0 == "" + req.time) {
      set req.http.kept = "kept";
    }
    if (req.method == "POST") { return (pass); }
  }
  if (req.url ~ "^/s/") { return (synth(200)); }
}
sub vcl_synth {
  if (req.esi_level > 0) {
    set req.http.same = "differ";
    if (req.time == req_top.time) { set req.http.same = "same"; }
    set req.http.tt = "bad";
    if (req_top.http.top-time == "" + req_top.time) { set req.http.tt = "ok"; }
    set req.http.recent = "no";
    if (now >= req_top.time && now - req_top.time < 60s) { set req.http.recent = "yes"; }
    set resp.body = "[" + req.esi_level + " " + req.url + " top=" + req_top.method + " " + req_top.url + " " +
      req_top.proto + " foo=" + req_top.http.foo + " kept=" + req_top.http.kept + " " + req.http.same + " " +
      req.http.tt + " " + req.http.recent + "]";
    return (deliver);
  }
}
sub vcl_backend_response {
  set beresp.do_esi = true;
}
`

const PAGE = '<p>a<esi:include src="/s/one"/>b<esi:include src="/nest"/>c</p>'
const NEST = '<n><esi:include src="/s/two"/></n>'

// Raw requests: the top request's protocol (req_top.proto) is the client's.
const REQUESTS: Record<string, string> = {
  'GET 1.1': 'GET /page HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n',
  'GET 1.0': 'GET /page?v=10 HTTP/1.0\r\nHost: t\r\n\r\n',
  'after a restart': 'GET /page?restart HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n',
  'POST (a pass)': 'POST /page?post HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
}

describe('req_top.* in ESI fragments against varnishd', { skip: skipWithoutVarnishd }, () => {
  const pair = differentialPair(vcl, (req, res) => {
      res.writeHead(200, { 'Cache-Control': 'max-age=60' })
      res.end((req.url ?? '').startsWith('/nest') ? NEST : PAGE)
    })

  test('what the fragments read is what varnishd gives them', async () => {
    const { varnishd, router } = pair()
    const theirs: Record<string, string> = {}
    const ours: Record<string, string> = {}
    // Twice: misses, then hits of the page (the fragments are synth every time).
    for (const round of [1, 2]) {
      for (const [name, bytes] of Object.entries(REQUESTS)) {
        const read = async (port: number) => {
          const { responses } = await rawExchange(port, bytes)
          const r = responses.at(-1)
          return `${r?.status} ${r?.body}`
        }
        theirs[`${name} #${round}`] = await read(varnishd.port)
        ours[`${name} #${round}`] = await read(router.port)
      }
    }
    assert.deepEqual(ours, theirs)
    // The comparison is not empty: every level saw its top request's time.
    assert.match(theirs['GET 1.1 #1'] ?? '', /\[1 \/s\/one top=GET \/page HTTP\/1\.1 foo=bar \/page kept= same ok yes\]/)
    assert.match(theirs['after a restart #1'] ?? '', /\[2 \/s\/two top=GET \/page\?restart HTTP\/1\.1 foo=bar \/page\?restart kept=kept same ok yes\]/)
  })
})
