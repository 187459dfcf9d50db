import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import {
  createRequestContext,
  NEXT_STEP,
  startBackendRequest,
  startBackendResponse,
  startResponse,
  type VclContext,
  VclHeaders,
  type VclIp,
  VclProgram,
} from '../src/vcl/index.js'

// Compiled subroutines run against real context objects, with the built-in VCL appended.
const CONFIG = fileURLToPath(new URL('../../../../config/', import.meta.url))

const ip = (address: string, port = 40000): VclIp => ({ address, port, family: address.includes(':') ? 6 : 4 })

function compile(text: string): VclProgram {
  return new VclProgram('test', { name: 'test.vcl', text })
}

function request(
  method: string,
  url: string,
  headers: string[] = ['Host', 'example.com'],
  more: { client?: string; proto?: string } = {},
): VclContext & { hashed: string[]; logged: string[]; bans: string[] } {
  const hashed: string[] = []
  const logged: string[] = []
  const bans: string[] = []
  const ctx = createRequestContext({
    method,
    url,
    proto: more.proto ?? 'HTTP/1.1',
    headers,
    client: ip(more.client ?? '127.0.0.1'),
    local: ip('127.0.0.1', 8080),
    xid: '1001',
    now: () => 1_700_000_000,
    hashData: (p) => hashed.push(p),
    log: (m) => logged.push(m),
    ban: (e) => {
      if (!e.includes(' ')) return 'bad ban expression'
      bans.push(e)
      return undefined
    },
  })
  return Object.assign(ctx, { hashed, logged, bans })
}

const APP = `
backend app { .host = "127.0.0.1"; .port = "3000"; }
`
const BACKENDS = `
backend app { .host = "127.0.0.1"; .port = "3000"; }
backend files { .host = "127.0.0.1"; .port = "8081"; }
`

describe('the article default.vcl (4.1 and 3.0 forms)', async () => {
  for (const file of ['default.vcl', 'default-3.0.vcl']) {
    const program = new VclProgram(file, { name: file, text: await readFile(`${CONFIG}${file}`, 'utf8') })

    test(`${file}: static files go to nginx, the rest to node`, () => {
      const js = request('GET', '/app.js')
      assert.deepEqual(program.run('recv', js), { action: 'hash' })
      assert.equal(js.req.backendHint?.name, 'nginx')
      const page = request('GET', '/')
      assert.deepEqual(program.run('recv', page), { action: 'hash' })
      // default.vcl reaches the app through a hash director over its instances (app1...),
      // filled in vcl_init; its .backend() answers the instance it picked.
      if (file === 'default.vcl') {
        assert.deepEqual(program.init(request('GET', '/')), { action: 'ok' })
        const again = request('GET', '/')
        program.run('recv', again)
        assert.equal(again.req.backendHint?.name, 'app1')
      } else {
        assert.equal(page.req.backendHint?.name, 'node')
      }
    })

    test(`${file}: websockets and /socket.io/ are piped`, () => {
      assert.equal(program.run('recv', request('GET', '/socket.io/?EIO=4')).action, 'pipe')
      const ws = request('GET', '/chat', ['Host', 'x', 'Upgrade', 'WebSocket', 'Connection', 'Upgrade'])
      assert.equal(program.run('recv', ws).action, 'pipe')
      startBackendRequest(ws, { xid: '1002', uncacheable: true })
      ;(ws.bereq as { http: VclHeaders }).http.unset('upgrade')
      assert.equal(program.run('pipe', ws).action, 'pipe')
      assert.equal(ws.bereq?.http.get('Upgrade'), 'WebSocket')
    })

    test(`${file}: without a return, vcl_recv falls through to the built-in rules`, () => {
      assert.equal(program.run('recv', request('POST', '/form')).action, 'pass')
      assert.equal(program.run('recv', request('GET', '/', ['Host', 'x', 'Cookie', 'a=1'])).action, 'pass')
      assert.equal(program.run('recv', request('GET', '/', ['Host', 'x', 'Authorization', 'Basic x'])).action, 'pass')
      assert.equal(program.run('recv', request('FOO', '/')).action, 'pipe')
      assert.deepEqual(program.run('recv', request('PRI', '*')), { action: 'synth', status: 405 })
      assert.deepEqual(program.run('recv', request('GET', '/', [])), { action: 'synth', status: 400 })
      // HTTP/1.0 does not require Host.
      assert.equal(program.run('recv', request('GET', '/', [], { proto: 'HTTP/1.0' })).action, 'hash')
      const upper = request('GET', '/', ['Host', 'Example.COM'])
      program.run('recv', upper)
      assert.equal(upper.req.http.get('host'), 'example.com')
    })
  }
})

describe('the built-in VCL', () => {
  const program = compile(`vcl 4.1;${BACKENDS} sub vcl_recv { set req.backend_hint = files; }`)

  test('which methods are builtin.vcl alone: no sub reached from vcl_M is in the user\'s files', () => {
    assert.equal(program.isBuiltinOnly('recv'), false)
    for (const m of ['hit', 'miss', 'deliver', 'pass'] as const) assert.equal(program.isBuiltinOnly(m), true, m)
    const own = compile(`vcl 4.1;${BACKENDS} sub vcl_recv { set req.backend_hint = files; } sub vcl_deliver { set resp.http.X = "1"; } sub vcl_builtin_hit { }`)
    assert.equal(own.isBuiltinOnly('deliver'), false)
    assert.equal(own.isBuiltinOnly('hit'), false, 'vcl_builtin_hit is the user\'s code too')
    assert.equal(own.isBuiltinOnly('miss'), true)
    // varnish 3 names are read as the 4.x methods they became.
    const v3 = compile(`${BACKENDS} sub vcl_recv { set req.backend_hint = files; } sub vcl_fetch { set beresp.ttl = 1s; }`)
    assert.equal(v3.isBuiltinOnly('backend_response'), false)
    // So is any sub that builtin.vcl calls from the method, however deep.
    const deep = compile(`vcl 4.1;${BACKENDS} sub vcl_recv { set req.backend_hint = files; } sub vcl_beresp_hitmiss { set beresp.http.X = "1"; }`)
    assert.equal(deep.isBuiltinOnly('backend_response'), false)
    assert.equal(deep.isBuiltinOnly('pass'), true)
    assert.equal(deep.isBuiltinOnly('backend_fetch'), true)
  })

  test('vcl_hash hashes the URL and the Host, or the server address', () => {
    const ctx = request('GET', '/a?b')
    assert.deepEqual(program.run('hash', ctx), { action: 'lookup' })
    assert.deepEqual(ctx.hashed, ['/a?b', 'example.com'])
    const noHost = request('GET', '/a', [], { proto: 'HTTP/1.0' })
    program.run('hash', noHost)
    assert.deepEqual(noHost.hashed, ['/a', '127.0.0.1'])
  })

  test('vcl_backend_response makes hit-for-miss objects of uncacheable responses', () => {
    const cases: [string[], number][] = [
      [['Set-Cookie', 'a=1'], 0],
      [['Cache-Control', 'private'], 0],
      [['Cache-Control', 'No-Store'], 0],
      [['Surrogate-Control', 'no-store'], 0],
      [['Vary', '*'], 0],
      [[], 0],
    ]
    for (const [headers, i] of cases) {
      const ctx = request('GET', '/')
      startBackendRequest(ctx, { xid: '2', uncacheable: false })
      startBackendResponse(ctx, { status: 200, reason: 'OK', headers, ttl: headers.length === 0 ? 0 : 60 + i, grace: 10, keep: 0 })
      assert.deepEqual(program.run('backend_response', ctx), { action: 'deliver' })
      assert.equal(ctx.beresp?.uncacheable, true, `uncacheable for ${headers.join(': ') || 'ttl 0'}`)
      assert.equal(ctx.beresp?.ttl, 120)
    }
    const ok = request('GET', '/')
    startBackendRequest(ok, { xid: '2', uncacheable: false })
    startBackendResponse(ok, { status: 200, reason: 'OK', headers: ['Cache-Control', 'max-age=60'], ttl: 60, grace: 10, keep: 0 })
    program.run('backend_response', ok)
    assert.equal(ok.beresp?.uncacheable, false)
    assert.equal(ok.beresp?.ttl, 60)
  })

  test('vcl_synth writes varnish guru meditation page', () => {
    const ctx = request('GET', '/')
    startResponse(ctx, { status: 503, reason: 'Backend fetch failed', headers: [] })
    assert.deepEqual(program.run('synth', ctx), { action: 'deliver' })
    assert.match(ctx.resp?.body ?? '', /<title>503 Backend fetch failed<\/title>/)
    assert.match(ctx.resp?.body ?? '', /XID: 1001/)
    assert.equal(ctx.resp?.http.get('Retry-After'), '5')
  })

  test('vcl_backend_fetch drops the body of a GET; other steps return their defaults', () => {
    const ctx = request('GET', '/')
    startBackendRequest(ctx, { xid: '2', uncacheable: false })
    assert.deepEqual(program.run('backend_fetch', ctx), { action: 'fetch' })
    assert.equal(ctx.bereq?.bodyUnset, true)
    assert.equal(program.run('miss', ctx).action, 'fetch')
    assert.equal(program.run('pass', ctx).action, 'fetch')
    assert.equal(program.run('hit', ctx).action, 'deliver')
    assert.deepEqual(program.run('purge', ctx), { action: 'synth', status: 200, reason: 'Purged' })
    assert.equal(NEXT_STEP.recv.purge, 'hash')
  })
})

describe('requests start like varnish requests', () => {
  test('req.backend_hint starts as the first backend, and std.healthy() sees it', () => {
    const p = compile(`vcl 4.1;
      import std;${BACKENDS}
      sub vcl_recv { if (std.healthy(req.backend_hint)) { return (synth(200, "default " + req.backend_hint)); } }
      sub vcl_deliver { set resp.http.x = files; }`)
    const ctx = p.newRequest({ method: 'GET', url: '/', proto: 'HTTP/1.1', headers: ['Host', 'h'], client: ip('127.0.0.1'), local: ip('127.0.0.1'), xid: '1' })
    assert.deepEqual(p.run('recv', ctx), { action: 'synth', status: 200, reason: 'default app' })
  })
})

describe('restart and retry', () => {
  test('a restart runs vcl_recv again with the same req and req.restarts + 1', () => {
    const p = compile(`vcl 4.1;${APP}
      sub vcl_recv {
        if (req.restarts == 0) { set req.http.X-First = "yes"; }
        set req.http.X-Seen = req.restarts;
      }
      sub vcl_deliver { if (resp.status == 503 && req.restarts < 1) { return (restart); } }`)
    const ctx = request('GET', '/')
    p.run('recv', ctx)
    startResponse(ctx, { status: 503, reason: 'Service Unavailable', headers: [] })
    const r = p.run('deliver', ctx)
    assert.equal(r.action, 'restart')
    assert.equal(NEXT_STEP.deliver[r.action], 'recv')
    ctx.req.restarts++
    p.run('recv', ctx)
    assert.equal(ctx.req.http.get('X-First'), 'yes')
    assert.equal(ctx.req.http.get('X-Seen'), '1')
    assert.equal(p.run('deliver', ctx).action, 'deliver')
  })

  test('a retry runs vcl_backend_fetch again with bereq.retries + 1', () => {
    const p = compile(`vcl 4.1;${APP}
      sub vcl_backend_response { if (beresp.status >= 500 && bereq.retries < 2) { return (retry); } }`)
    const ctx = request('GET', '/')
    startBackendRequest(ctx, { xid: '2', uncacheable: false })
    const statuses: string[] = []
    for (;;) {
      startBackendResponse(ctx, { status: 503, reason: 'x', headers: [], ttl: 1, grace: 0, keep: 0 })
      const r = p.run('backend_response', ctx)
      statuses.push(r.action)
      if (r.action !== 'retry') break
      if (ctx.bereq) ctx.bereq.retries++
    }
    assert.deepEqual(statuses, ['retry', 'retry', 'deliver'])
  })
})

describe('statements and expressions', () => {
  test('if / elsif / elseif / else if / else pick one branch', () => {
    const p = compile(`vcl 4.1;${APP}
      sub vcl_recv {
        if (req.url == "/a") { set req.http.x = "a"; }
        elsif (req.url == "/b") { set req.http.x = "b"; }
        elseif (req.url == "/c") { set req.http.x = "c"; }
        else if (req.url == "/d") { set req.http.x = "d"; }
        else { set req.http.x = "other"; }
        return (hash);
      }
      sub vcl_deliver { set resp.http.y = 1; }`)
    for (const [url, x] of [['/a', 'a'], ['/b', 'b'], ['/c', 'c'], ['/d', 'd'], ['/e', 'other']]) {
      const ctx = request('GET', url as string)
      p.run('recv', ctx)
      assert.equal(ctx.req.http.get('x'), x)
    }
  })

  test('set / unset headers, concatenation, long strings, += and the backend default', () => {
    const p = compile(`vcl 4.1;${BACKENDS}
      sub vcl_recv {
        set req.http.Joined = "a" + req.url + {"-long "quoted"-"} + 42 + true + 1.5 + 2m;
        set req.http.Empty = req.http.Missing;
        unset req.http.Cookie;
        set req.http.Acc = "x";
        set req.http.Acc += "y";
        set req.backend_hint = files;
        return (hash);
      }`)
    const ctx = request('GET', '/u', ['Host', 'h', 'Cookie', 'c=1', 'cookie', 'd=2'])
    p.run('recv', ctx)
    assert.equal(ctx.req.http.get('joined'), 'a/u-long "quoted"-42true1.500120.000')
    assert.equal(ctx.req.http.get('Empty'), '')
    assert.equal(ctx.req.http.has('cookie'), false)
    assert.equal(ctx.req.http.get('acc'), 'xy')
    assert.equal(ctx.req.backendHint?.name, 'files')
    assert.equal(p.compiled.defaultBackend?.name, 'app')
  })

  test('regex match with (?i), inline (?i:...), POSIX classes, !~ and unset headers', () => {
    const p = compile(`vcl 4.1;${APP}
      sub vcl_recv {
        if (req.url ~ "(?i)\\.JPE?G$") { return (pass); }
        if (req.http.X ~ "^(?i:abc)d$") { return (pipe); }
        if (req.http.Y ~ "^[[:digit:]]+$") { return (synth(701)); }
        if (req.http.Z !~ "^$") { return (synth(702)); }
        return (hash);
      }`)
    assert.equal(p.run('recv', request('GET', '/a.jpg')).action, 'pass')
    assert.equal(p.run('recv', request('GET', '/', ['Host', 'h', 'X', 'ABCd'])).action, 'pipe')
    assert.equal(p.run('recv', request('GET', '/', ['Host', 'h', 'X', 'ABCD'])).action, 'hash')
    assert.equal(p.run('recv', request('GET', '/', ['Host', 'h', 'Y', '123'])).status, 701)
    assert.equal(p.run('recv', request('GET', '/', ['Host', 'h', 'Z', 'v'])).status, 702)
    // An unset header matches as the empty string, as in varnish.
    assert.equal(p.run('recv', request('GET', '/', ['Host', 'h'])).action, 'hash')
  })

  test('regsub, regsuball with \\1 back-references and literal $', () => {
    const p = compile(`vcl 4.1;${APP}
      sub vcl_recv {
        set req.http.A = regsub(req.url, "^/(\\w+)/(\\w+)", "/\\2/\\1$");
        set req.http.B = regsuball(req.url, "o", "0");
        set req.http.C = regsub(req.url, "zzz", "y");
        set req.url = regsuball(req.url, "[?&]utm_[a-z]+=[^&]*", "");
      }`)
    const ctx = request('GET', '/foo/bar/boo?utm_source=x&utm_medium=y')
    p.run('recv', ctx)
    assert.equal(ctx.req.http.get('A'), '/bar/foo$/boo?utm_source=x&utm_medium=y')
    assert.equal(ctx.req.http.get('B'), '/f00/bar/b00?utm_s0urce=x&utm_medium=y')
    assert.equal(ctx.req.http.get('C'), '/foo/bar/boo?utm_source=x&utm_medium=y')
    assert.equal(ctx.req.url, '/foo/bar/boo')
  })

  test('std functions', () => {
    const p = compile(`vcl 4.1;
      import std;${APP}
      sub vcl_recv {
        set req.http.L = std.tolower("AbC");
        set req.http.U = std.toupper("AbC") + req.http.host.upper();
        set req.http.I = std.integer(req.http.N, 7) + 1;
        set req.http.Bad = std.integer("12abc", -1);
        set req.http.Ip = std.ip(req.http.X-Real-IP, "0.0.0.0");
        set req.http.Fallback = std.ip("not an ip", "192.0.2.1");
        set req.http.Port = std.port(server.ip);
        set req.http.Healthy = std.healthy(req.backend_hint);
        std.log("hello " + req.url);
        if (std.ban("obj.http.x == y")) { set req.http.Banned = "yes"; }
        if (!std.ban("nonsense")) { set req.http.Refused = "yes"; }
        return (hash);
      }`)
    const ctx = request('GET', '/x', ['Host', 'Ex', 'N', '41', 'X-Real-IP', '2001:db8::1'])
    p.run('recv', ctx)
    assert.equal(ctx.req.http.get('L'), 'abc')
    assert.equal(ctx.req.http.get('U'), 'ABCEX')
    assert.equal(ctx.req.http.get('I'), '42')
    assert.equal(ctx.req.http.get('Bad'), '-1')
    assert.equal(ctx.req.http.get('Ip'), '2001:db8::1')
    assert.equal(ctx.req.http.get('Fallback'), '192.0.2.1')
    assert.equal(ctx.req.http.get('Port'), '8080')
    assert.equal(ctx.req.http.get('Healthy'), 'false')
    assert.deepEqual(ctx.logged, ['hello /x'])
    assert.deepEqual(ctx.bans, ['obj.http.x == y'])
    assert.equal(ctx.req.http.get('Banned'), 'yes')
    assert.equal(ctx.req.http.get('Refused'), 'yes')
  })

  test('comparisons, durations, ints, reals, bools and arithmetic', () => {
    const p = compile(`vcl 4.1;${APP}
      sub vcl_backend_response {
        if (beresp.ttl > 1m && beresp.ttl <= 1h) { set beresp.ttl = beresp.ttl * 2; }
        if (beresp.status >= 500 || beresp.status == 404) { set beresp.ttl = 1s; }
        if (!beresp.uncacheable) { set beresp.grace = 2d - 1d + 30m; }
        set beresp.keep = 1w / 7;
        set beresp.http.X-Int = 7 / 2;
        set beresp.http.X-Real = 7.0 / 2;
        set beresp.http.X-Neg = -beresp.status;
        return (deliver);
      }`)
    const ctx = request('GET', '/')
    startBackendRequest(ctx, { xid: '2', uncacheable: false })
    startBackendResponse(ctx, { status: 200, reason: 'OK', headers: [], ttl: 120, grace: 10, keep: 0 })
    p.run('backend_response', ctx)
    assert.equal(ctx.beresp?.ttl, 240)
    assert.equal(ctx.beresp?.grace, 86400 + 1800)
    assert.equal(ctx.beresp?.keep, 86400)
    assert.equal(ctx.beresp?.http.get('X-Int'), '3')
    assert.equal(ctx.beresp?.http.get('X-Real'), '3.500')
    assert.equal(ctx.beresp?.http.get('X-Neg'), '-200')
    const err = request('GET', '/')
    startBackendRequest(err, { xid: '3', uncacheable: false })
    startBackendResponse(err, { status: 503, reason: 'x', headers: [], ttl: 120, grace: 10, keep: 0 })
    p.run('backend_response', err)
    assert.equal(err.beresp?.ttl, 1)
  })

  test('&& and || chains, comparisons with literals, if with and without else, blocks of 1 to 5 statements', () => {
    // The compiler flattens chains and specialises these shapes (compile-expr.ts logical()).
    const p = compile(`vcl 4.1;${APP}
      sub vcl_recv {
        if (req.method != "GET" && req.method != "HEAD" && req.method != "PUT" && req.method != "POST") { set req.http.X-Odd = "1"; }
        if (req.url == "/a" || req.url == "/b" || req.http.X-Any) { set req.http.X-Ab = "1"; set req.http.X-Ab2 = "2"; }
        if (req.http.X-Num && req.http.X-Num != "0" && !req.http.X-Never) { set req.http.X-Num-Set = "1"; } else { set req.http.X-Num-Set = "0"; }
        if (req.url == "/c") { set req.http.X-C = "1"; } elsif (req.url != "/d") { set req.http.X-C = "2"; } else { set req.http.X-C = "3"; }
        if (req.http.X-Stop) { set req.http.X-1 = "1"; set req.http.X-2 = "2"; return (synth(403)); }
        if (req.url == "/five") { set req.http.X-1 = "1"; set req.http.X-2 = "2"; set req.http.X-3 = "3"; set req.http.X-4 = "4"; return (pass); }
        return (hash);
      }`)
    const run = (method: string, url: string, headers: string[] = ['Host', 'example.com']) => {
      const ctx = request(method, url, headers)
      return { ret: p.run('recv', ctx), h: (n: string) => ctx.req.http.get(n) }
    }
    assert.equal(run('DELETE', '/x').h('X-Odd'), '1')
    for (const m of ['GET', 'HEAD', 'PUT', 'POST']) assert.equal(run(m, '/x').h('X-Odd'), undefined)
    for (const [url, hs, want] of [
      ['/a', [], '1'],
      ['/b', [], '1'],
      ['/c', [], undefined],
      ['/c', ['X-Any', ''], '1'],
    ] as const) {
      const r = run('GET', url, ['Host', 'h', ...hs])
      assert.equal(r.h('X-Ab'), want, url)
      assert.equal(r.h('X-Ab2'), want === undefined ? undefined : '2')
    }
    assert.equal(run('GET', '/', ['X-Num', '5']).h('X-Num-Set'), '1')
    assert.equal(run('GET', '/', ['X-Num', '0']).h('X-Num-Set'), '0')
    assert.equal(run('GET', '/', ['X-Num', '5', 'X-Never', '']).h('X-Num-Set'), '0')
    assert.equal(run('GET', '/', []).h('X-Num-Set'), '0')
    assert.equal(run('GET', '/c').h('X-C'), '1')
    assert.equal(run('GET', '/e').h('X-C'), '2')
    assert.equal(run('GET', '/d').h('X-C'), '3')
    const stopped = run('GET', '/', ['X-Stop', '1'])
    assert.deepEqual([stopped.ret.action, stopped.ret.status, stopped.h('X-1'), stopped.h('X-2')], ['synth', 403, '1', '2'])
    const five = run('GET', '/five')
    assert.deepEqual([five.ret.action, five.h('X-4')], ['pass', '4'])
    assert.equal(run('GET', '/').ret.action, 'hash')
  })

  test('acl: IPs, CIDR, negation (most specific entry wins), IPv6 and IPv4-mapped peers', () => {
    const p = compile(`vcl 4.1;${APP}
      acl purgers { "127.0.0.1"; "10.0.0.0"/8; ! "10.1.0.0"/16; "10.1.2.3"; "2001:db8::"/32; }
      sub vcl_recv {
        if (req.method == "PURGE") {
          if (client.ip !~ purgers) { return (synth(405, "Not allowed.")); }
          return (purge);
        }
      }`)
    const verdict = (client: string) => p.run('recv', request('PURGE', '/', ['Host', 'h'], { client })).action
    assert.equal(verdict('127.0.0.1'), 'purge')
    assert.equal(verdict('::ffff:127.0.0.1'), 'purge')
    assert.equal(verdict('10.9.8.7'), 'purge')
    assert.equal(verdict('10.1.9.9'), 'synth')
    assert.equal(verdict('10.1.2.3'), 'purge')
    assert.equal(verdict('2001:db8:1::5'), 'purge')
    assert.equal(verdict('2001:db9::5'), 'synth')
    assert.equal(verdict('192.168.1.1'), 'synth')
  })

  test('custom subs with call, and a return inside one ends the method', () => {
    const p = compile(`vcl 4.1;${BACKENDS}
      sub pick { if (req.url ~ "^/static/") { set req.backend_hint = files; return (hash); } }
      sub vcl_recv { call pick; set req.http.After = "yes"; return (pass); }`)
    const s = request('GET', '/static/x')
    assert.equal(p.run('recv', s).action, 'hash')
    assert.equal(s.req.http.get('After'), undefined)
    const o = request('GET', '/other')
    assert.equal(p.run('recv', o).action, 'pass')
    assert.equal(o.req.http.get('After'), 'yes')
  })

  test('repeated vcl_recv definitions run in order, then the built-in one', () => {
    const p = compile(`vcl 4.1;${APP}
      sub vcl_recv { set req.http.One = "1"; }
      sub vcl_recv { set req.http.Two = req.http.One + "2"; }`)
    const ctx = request('POST', '/')
    assert.equal(p.run('recv', ctx).action, 'pass')
    assert.equal(ctx.req.http.get('Two'), '12')
  })

  test('synthetic, resp.body, hash_data, ban and return (pass(DURATION))', () => {
    const p = compile(`vcl 4.1;${APP}
      sub vcl_recv { ban("req.url ~ " + req.url); }
      sub vcl_hash { hash_data(req.http.X-Lang); }
      sub vcl_synth { synthetic("custom " + resp.status); return (deliver); }
      sub vcl_backend_error { synthetic("be " + beresp.status); return (deliver); }
      sub vcl_backend_response { if (beresp.status == 500) { return (pass(30s)); } }`)
    const ctx = request('GET', '/p', ['Host', 'h', 'X-Lang', 'fr'])
    p.run('recv', ctx)
    assert.deepEqual(ctx.bans, ['req.url ~ /p'])
    p.run('hash', ctx)
    assert.deepEqual(ctx.hashed, ['fr', '/p', 'h'])
    startResponse(ctx, { status: 404, reason: 'Not Found', headers: [] })
    p.run('synth', ctx)
    assert.equal(ctx.resp?.body, 'custom 404')
    const be = request('GET', '/')
    startBackendRequest(be, { xid: '2', uncacheable: false })
    startBackendResponse(be, { status: 503, reason: 'Backend fetch failed', headers: [], ttl: 0, grace: 0, keep: 0 })
    p.run('backend_error', be)
    assert.equal(be.beresp?.body, 'be 503')
    if (be.beresp) be.beresp.status = 500
    assert.deepEqual(p.run('backend_response', be), { action: 'pass', ttl: 30 })
  })

  test('obj and resp in vcl_hit and vcl_deliver', () => {
    const p = compile(`vcl 4.1;${APP}
      sub vcl_hit { if (obj.ttl < 0s && obj.ttl + obj.grace > 0s) { return (synth(299, "stale")); } }
      sub vcl_deliver { set resp.http.X-Hits = obj.hits; if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; } else { set resp.http.X-Cache = "MISS"; } }`)
    const ctx = request('GET', '/')
    ctx.obj = { status: 200, reason: 'OK', proto: 'HTTP/1.1', http: new VclHeaders(), ttl: -5, grace: 10, keep: 0, age: 15, hits: 3, uncacheable: false,
    canEsi: false, time: 0 }
    assert.deepEqual(p.run('hit', ctx), { action: 'synth', status: 299, reason: 'stale' })
    startResponse(ctx, { status: 200, reason: 'OK', headers: [] })
    p.run('deliver', ctx)
    assert.equal(ctx.resp?.http.get('x-cache'), 'HIT')
    assert.equal(ctx.resp?.http.get('x-hits'), '3')
  })

  test('the 3.0 dialect: director declarations used as backends, req.backend.healthy', async () => {
    const file = fileURLToPath(new URL('../../test/fixtures/vcl/dialect-3.0/directors.vcl', import.meta.url))
    const p = new VclProgram('d', { name: file, text: await readFile(file, 'utf8') })
    const pick = (url: string, cookie = 'id=1') => {
      const ctx = request('GET', url, ['Host', 'h', 'Cookie', cookie])
      const r = p.run('recv', ctx)
      return { r, name: ctx.req.backendHint?.resolve(ctx)?.name }
    }
    assert.deepEqual(
      [pick('/a').name, pick('/b').name, pick('/c').name],
      ['web1', 'web2', 'web1'],
    )
    // The client director sticks to one member per client.identity.
    const first = pick('/account/x', 'id=42').name
    for (let i = 0; i < 5; i++) assert.equal(pick('/account/y', 'id=42').name, first)
    assert.ok(['web1', 'sticky[1]'].includes(first ?? ''))
    for (const b of p.compiled.backends.values()) b.setHealthy(false)
    assert.deepEqual(pick('/a').r, { action: 'synth', status: 503, reason: 'No backend' })
    assert.equal(compile('vcl 4.1;\nbackend a { .host = "h"; }\nsub vcl_recv { return (pass); }').compiled.directors.size, 0)
    assert.throws(() => compile('vcl 4.1;\nbackend a { .host = "h"; }\ndirector d round-robin { { .backend = a; } }'), /Expected one of/)
  })

  test('the 3.0 dialect: purge; in vcl_hit / vcl_miss and ban_url()', async () => {
    const file = fileURLToPath(new URL('../../test/fixtures/vcl/dialect-3.0/purge.vcl', import.meta.url))
    const p = new VclProgram('p', { name: file, text: await readFile(file, 'utf8') })
    const ctx = request('PURGE', '/x')
    let purged = 0
    ctx.purge = () => {
      purged++
    }
    assert.deepEqual(p.run('recv', ctx), { action: 'hash' })
    assert.deepEqual(p.run('hit', ctx), { action: 'synth', status: 200, reason: 'Purged.' })
    assert.deepEqual(p.run('miss', ctx), { action: 'synth', status: 200, reason: 'Purged.' })
    assert.equal(purged, 2)
    assert.deepEqual(p.run('recv', request('PURGE', '/x', ['Host', 'h'], { client: '10.0.0.1' })), { action: 'synth', status: 405, reason: 'Not allowed.' })
    const ban = request('BAN', '/news/.*')
    assert.equal(p.run('recv', ban).status, 200)
    assert.deepEqual(ban.bans, ['req.url ~ /news/.*'])
    assert.throws(() => compile(`${APP}sub vcl_recv { purge; }`), /Not a valid action in subroutine 'vcl_recv'/)
  })

  test('the 3.0 dialect: req.request, error, vcl_fetch, vcl_error with obj.*, return (lookup)', () => {
    const p = compile(`backend app { .host = "127.0.0.1"; .port = "3000"; }
      sub vcl_recv {
        if (req.request == "PURGE") { error 405 "Not allowed."; }
        if (req.request != "GET") { return (pass); }
        return (lookup);
      }
      sub vcl_fetch { if (req.url ~ "css$") { set beresp.ttl = 1h; } return (hit_for_pass); }
      sub vcl_error { set obj.http.X-Error = obj.status + " " + obj.response; synthetic "Error " + obj.status; return (deliver); }`)
    assert.equal(p.compiled.dialect, '3.0')
    assert.deepEqual(p.run('recv', request('PURGE', '/')), { action: 'synth', status: 405, reason: 'Not allowed.' })
    assert.equal(p.run('recv', request('POST', '/')).action, 'pass')
    assert.equal(p.run('recv', request('GET', '/')).action, 'hash')
    const be = request('GET', '/a.css')
    startBackendRequest(be, { xid: '2', uncacheable: false })
    startBackendResponse(be, { status: 200, reason: 'OK', headers: [], ttl: 5, grace: 0, keep: 0 })
    assert.equal(p.run('backend_response', be).action, 'pass')
    assert.equal(be.beresp?.ttl, 3600)
    const syn = request('GET', '/')
    startResponse(syn, { status: 405, reason: 'Not allowed.', headers: [] })
    p.run('synth', syn)
    assert.equal(syn.resp?.http.get('X-Error'), '405 Not allowed.')
    assert.equal(syn.resp?.body, 'Error 405')
  })
})
