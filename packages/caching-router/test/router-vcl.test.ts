import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { access, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { promisify } from 'node:util'
import type { HostPort } from '@edgestack/common'
import { adminCommand } from '../src/admin-client.js'
import { rawExchange } from './raw-client.js'
import { startOrigin } from './router-harness.js'
import { startVclRouter, type VclRouter } from './router-vcl-harness.js'

const VARNISHADM = '/usr/bin/varnishadm'
const hasVarnishadm = await access(VARNISHADM).then(
  () => true,
  () => false,
)
const run = promisify(execFile)

async function startVcl(t: TestContext, text: string): Promise<VclRouter> {
  const r = await startVclRouter(text)
  t.after(() => r.stop())
  return r
}

function backend(name: string, a: HostPort, extra = ''): string {
  return `backend ${name} { .host = "${a.host}"; .port = "${a.port}";${extra} }\n`
}

test('VCL routes by req.backend_hint, rewrites headers, sets ttl, counts obj.hits', async (t) => {
  const app = await startOrigin(t, (req, res) => res.end(`app ${req.url} ${req.headers['x-seen'] ?? ''}`))
  const stat = await startOrigin(t, (req, res) => res.end(`static ${req.url}`))
  const r = await startVcl(
    t,
    `vcl 4.1;
${backend('app', app.address)}${backend('stat', stat.address)}
sub vcl_recv {
  if (req.url ~ "\\.css$") { set req.backend_hint = stat; } else { set req.backend_hint = app; }
  set req.http.X-Seen = "yes";
  unset req.http.Cookie;
}
sub vcl_backend_response { set beresp.ttl = 60s; set beresp.http.X-Be = bereq.http.X-Seen; }
sub vcl_deliver { set resp.http.X-Hits = obj.hits; unset resp.http.Via; }
`,
  )
  const first = await fetch(`${r.url}/a`, { headers: { Cookie: 'x=1' } })
  assert.equal(await first.text(), 'app /a yes')
  assert.equal(first.headers.get('x-be'), 'yes')
  assert.equal(first.headers.get('via'), null)
  const second = await fetch(`${r.url}/a`, { headers: { Cookie: 'x=1' } })
  assert.equal(await second.text(), 'app /a yes')
  // A hit: the Cookie was unset in vcl_recv, so builtin's vcl_recv did not pass.
  assert.match(second.headers.get('x-varnish') ?? '', /^\d+ \d+$/)
  assert.equal(second.headers.get('x-hits'), '1')
  assert.equal(app.seen.length, 1)
  assert.equal(await (await fetch(`${r.url}/x.css`)).text(), 'static /x.css')
  assert.equal(stat.seen.length, 1)
})

test('return (synth) with synthetic(), return (pass), vcl_deliver on a pass, hash_data', async (t) => {
  const app = await startOrigin(t, (req, res) => res.end(`app ${req.url}`))
  const r = await startVcl(
    t,
    `vcl 4.1;
${backend('app', app.address)}
sub vcl_recv {
  if (req.url ~ "^/teapot") { return (synth(418, "Short and stout")); }
  if (req.url ~ "^/private") { return (pass); }
}
sub vcl_hash { hash_data(regsub(req.url, "\\?.*$", "")); return (lookup); }
sub vcl_backend_response { set beresp.ttl = 1h; }
sub vcl_deliver { set resp.http.X-Delivered = "1"; }
sub vcl_synth {
  if (resp.status == 418) {
    set resp.http.Content-Type = "text/plain";
    synthetic("I am a teapot: " + resp.reason);
    return (deliver);
  }
}
`,
  )
  const tea = await fetch(`${r.url}/teapot`)
  assert.equal(tea.status, 418)
  assert.equal(tea.headers.get('content-type'), 'text/plain')
  assert.equal(await tea.text(), 'I am a teapot: Short and stout')
  assert.equal(app.seen.length, 0)
  for (let i = 0; i < 2; i++) {
    const p = await fetch(`${r.url}/private`)
    assert.equal(await p.text(), 'app /private')
    assert.equal(p.headers.get('x-delivered'), '1')
  }
  assert.equal(app.seen.length, 2)
  // The query string is not hashed: /q?a and /q?b are one object.
  assert.equal(await (await fetch(`${r.url}/q?a`)).text(), 'app /q?a')
  assert.equal(await (await fetch(`${r.url}/q?b`)).text(), 'app /q?a')
  assert.equal(app.seen.length, 3)
})

test('PURGE guarded by an ACL: allowed from a listed address, 405 otherwise; ban() in VCL', async (t) => {
  const app = await startOrigin(t, (req, res, n) => res.end(`v${n} ${req.url}`))
  const r = await startVcl(
    t,
    `vcl 4.1;
${backend('app', app.address)}
acl purgers { "127.0.0.1"; }
acl nobody { "192.0.2.0"/24; }
sub vcl_recv {
  if (req.method == "PURGE") {
    if (client.ip ~ purgers) { return (purge); }
    return (synth(405, "Not allowed"));
  }
  if (req.method == "REFUSE") {
    if (client.ip ~ nobody) { return (purge); }
    return (synth(405, "Not allowed"));
  }
  if (req.method == "BAN") {
    ban("req.url ~ " + req.http.X-Ban);
    return (synth(200, "Banned"));
  }
}
sub vcl_backend_response { set beresp.ttl = 1h; }
`,
  )
  assert.equal(await (await fetch(`${r.url}/p`)).text(), 'v1 /p')
  assert.equal(await (await fetch(`${r.url}/p`)).text(), 'v1 /p')
  assert.equal((await fetch(`${r.url}/p`, { method: 'REFUSE' })).status, 405)
  assert.equal(await (await fetch(`${r.url}/p`)).text(), 'v1 /p')
  const purged = await fetch(`${r.url}/p`, { method: 'PURGE' })
  assert.equal(purged.status, 200)
  assert.equal(purged.statusText, 'Purged')
  assert.equal(await (await fetch(`${r.url}/p`)).text(), 'v2 /p')
  assert.equal((await fetch(`${r.url}/p`, { method: 'BAN', headers: { 'X-Ban': '^/p$' } })).status, 200)
  assert.match((await adminCommand(r.admin, undefined, 'ban.list')).body, /req\.url ~ \^\/p\$/)
  assert.equal(await (await fetch(`${r.url}/p`)).text(), 'v3 /p')
})

test('a backend whose probe fails is sick: a fallback director takes the next one', async (t) => {
  const good = await startOrigin(t, (_req, res) => res.end('good'))
  const dead = await startOrigin(t, (_req, res) => res.end('dead'))
  await dead.close()
  const r = await startVcl(
    t,
    `vcl 4.1;
import directors;
probe p { .url = "/"; .interval = 100ms; .timeout = 1s; .window = 1; .threshold = 1; .initial = 0; }
${backend('dead', dead.address, ' .probe = p;')}${backend('good', good.address, ' .probe = p;')}
sub vcl_init {
  new fb = directors.fallback();
  fb.add_backend(dead);
  fb.add_backend(good);
}
sub vcl_recv {
  if (req.url == "/dead") { set req.backend_hint = dead; } else { set req.backend_hint = fb.backend(); }
  return (pass);
}
`,
  )
  // Health comes from the probes: wait (bounded) until the good backend has passed one.
  let body = ''
  for (let i = 0; i < 100 && body !== 'good'; i++) {
    const res = await fetch(`${r.url}/`)
    body = await res.text()
    if (body !== 'good') await new Promise((resolve) => setTimeout(resolve, 50))
  }
  assert.equal(body, 'good')
  const sick = await fetch(`${r.url}/dead`)
  assert.equal(sick.status, 503)
  await sick.text()
})

test('vcl.load / vcl.use switch the VCL; a file that does not compile changes nothing; SIGHUP-style reload', async (t) => {
  const app = await startOrigin(t, (_req, res) => res.end('app'))
  const r = await startVcl(t, `vcl 4.1;\n${backend('app', app.address)}sub vcl_deliver { set resp.http.X-Vcl = "one"; }\n`)
  const two = join(r.dir, 'two.vcl')
  await writeFile(two, `vcl 4.1;\n${backend('app', app.address)}sub vcl_deliver { set resp.http.X-Vcl = "two"; }\n`)
  const bad = join(r.dir, 'bad.vcl')
  await writeFile(bad, 'vcl 4.1;\nsub vcl_recv { set req.nope = 1; }\n')
  const vclOf = async () => {
    const res = await fetch(`${r.url}/`)
    await res.text()
    return res.headers.get('x-vcl')
  }
  assert.equal(await vclOf(), 'one')
  const refused = await adminCommand(r.admin, undefined, `vcl.load broken ${bad}`)
  assert.equal(refused.status, 106)
  assert.match(refused.body, /bad\.vcl:2:\d+: .*\n.*req\.nope.*\n *\^/)
  assert.equal(await vclOf(), 'one')
  assert.equal((await adminCommand(r.admin, undefined, `vcl.load two ${two}`)).status, 200)
  assert.equal(await vclOf(), 'one')
  assert.equal((await adminCommand(r.admin, undefined, 'vcl.use two')).status, 200)
  assert.equal(await vclOf(), 'two')
  const list = (await adminCommand(r.admin, undefined, 'vcl.list')).body
  assert.match(list, /available .* boot/)
  assert.match(list, /active .* two/)
  assert.match((await adminCommand(r.admin, undefined, 'vcl.show two')).body, /X-Vcl = "two"/)
  assert.equal((await adminCommand(r.admin, undefined, 'vcl.discard two')).status, 300) // CLIS_CANT, as varnishd: the active VCL stays
  assert.equal((await adminCommand(r.admin, undefined, 'vcl.discard boot')).status, 200)
  // SIGHUP re-reads -f (boot.vcl): rewrite it and reload.
  await writeFile(join(r.dir, 'boot.vcl'), `vcl 4.1;\n${backend('app', app.address)}sub vcl_deliver { set resp.http.X-Vcl = "three"; }\n`)
  await r.router.reload()
  assert.equal(await vclOf(), 'three')
  await writeFile(join(r.dir, 'boot.vcl'), 'vcl 4.1;\nsub vcl_recv { set req.nope = 1; }\n')
  await assert.rejects(r.router.reload())
  assert.equal(await vclOf(), 'three')
})

test('a request in flight finishes under the VCL it started with', async (t) => {
  let release: () => void = () => {}
  const held = new Promise<void>((resolve) => {
    release = resolve
  })
  const app = await startOrigin(t, (req, res) => {
    if (req.url === '/slow') void held.then(() => res.end('slow'))
    else res.end('fast')
  })
  const r = await startVcl(t, `vcl 4.1;\n${backend('app', app.address)}sub vcl_recv { return (pass); }\nsub vcl_deliver { set resp.http.X-Vcl = "one"; }\n`)
  const two = join(r.dir, 'two.vcl')
  await writeFile(two, `vcl 4.1;\n${backend('app', app.address)}sub vcl_recv { return (pass); }\nsub vcl_deliver { set resp.http.X-Vcl = "two"; }\n`)
  const slow = fetch(`${r.url}/slow`)
  for (let i = 0; i < 500 && app.seen.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.equal(app.seen.length, 1)
  assert.equal((await adminCommand(r.admin, undefined, `vcl.load two ${two}`)).status, 200)
  assert.equal((await adminCommand(r.admin, undefined, 'vcl.use two')).status, 200)
  assert.match((await adminCommand(r.admin, undefined, 'vcl.list')).body, /available +auto +warm +1 +boot/)
  const fast = await fetch(`${r.url}/fast`)
  await fast.text()
  assert.equal(fast.headers.get('x-vcl'), 'two')
  release()
  const res = await slow
  assert.equal(await res.text(), 'slow')
  assert.equal(res.headers.get('x-vcl'), 'one')
})

test('a backend\'s .first_byte_timeout from the VCL applies (not the 60 s parameter): a silent backend is a 503', async (t) => {
  const held: Array<() => void> = []
  const silent = await startOrigin(t, (_req, res) => {
    held.push(() => res.end('late'))
  })
  t.after(() => {
    for (const h of held) h()
  })
  const r = await startVcl(t, `vcl 4.1;\n${backend('silent', silent.address, ' .first_byte_timeout = 200ms;')}sub vcl_recv { return (pass); }\n`)
  const res = await fetch(`${r.url}/`, { signal: AbortSignal.timeout(20_000) })
  assert.equal(res.status, 503)
  await res.text()
})

test('Debian\'s varnishadm drives vcl.load, vcl.use, vcl.list, vcl.show and vcl.discard', { skip: hasVarnishadm ? false : `${VARNISHADM} not installed` }, async (t) => {
  const app = await startOrigin(t, (_req, res) => res.end('app'))
  const r = await startVcl(t, `vcl 4.1;\n${backend('app', app.address)}sub vcl_deliver { set resp.http.X-Vcl = "one"; }\n`)
  const two = join(r.dir, 'two.vcl')
  await writeFile(two, `vcl 4.1;\n${backend('app', app.address)}sub vcl_deliver { set resp.http.X-Vcl = "two"; }\n`)
  const bad = join(r.dir, 'bad.vcl')
  await writeFile(bad, 'vcl 4.1;\nsub vcl_recv { set req.nope = 1; }\n')
  const adm = (...args: string[]) => run(VARNISHADM, ['-T', `127.0.0.1:${r.admin.port}`, ...args], { timeout: 10_000 })
  await assert.rejects(adm('vcl.load', 'broken', bad), (err: { stdout: string }) => /Symbol not found: 'req\.nope'/.test(err.stdout))
  assert.match((await adm('vcl.load', 'two', two)).stdout, /VCL compiled/)
  await adm('vcl.use', 'two')
  const list = (await adm('vcl.list')).stdout
  assert.match(list, /^available +auto +warm +0 +boot$/m)
  assert.match(list, /^active +auto +warm +0 +two$/m)
  assert.match((await adm('vcl.show', 'two')).stdout, /X-Vcl = "two"/)
  await adm('vcl.discard', 'boot')
  assert.doesNotMatch((await adm('vcl.list')).stdout, /boot/)
  const res = await fetch(`${r.url}/`)
  await res.text()
  assert.equal(res.headers.get('x-vcl'), 'two')
})

test('return (restart) from vcl_deliver and vcl_miss runs vcl_recv again; past max_restarts it is a 503', async (t) => {
  const app = await startOrigin(t, (req, res) => {
    res.statusCode = req.url === '/gone' ? 404 : 200
    res.end(`app ${req.url}`)
  })
  const r = await startVcl(
    t,
    `vcl 4.1;
${backend('app', app.address)}
sub vcl_recv { if (req.url == "/loop") { return (pass); } }
sub vcl_miss { if (req.url == "/moved") { set req.url = "/new"; return (restart); } }
sub vcl_deliver {
  if (resp.status == 404 && req.restarts == 0) { set req.url = "/fallback"; return (restart); }
  if (req.url == "/loop") { return (restart); }
  set resp.http.X-Restarts = req.restarts;
}
`,
  )
  const fallback = await fetch(`${r.url}/gone`)
  assert.equal(fallback.status, 200)
  assert.equal(await fallback.text(), 'app /fallback')
  assert.equal(fallback.headers.get('x-restarts'), '1')
  const moved = await fetch(`${r.url}/moved`)
  assert.equal(await moved.text(), 'app /new')
  assert.equal(moved.headers.get('x-restarts'), '1')
  assert.deepEqual(
    app.seen.map((s) => s.url),
    ['/gone', '/fallback', '/new'],
  )
  const loop = await fetch(`${r.url}/loop`)
  assert.equal(loop.status, 503)
  await loop.text()
  // The first try and max_restarts (4) more, then the 503.
  assert.equal(app.seen.filter((s) => s.url === '/loop').length, 5)
})

test('builtin-only vcl_hit/vcl_deliver are skipped, but a user vcl_builtin_deliver or vcl_hit still runs', async (t) => {
  const app = await startOrigin(t, (_req, res) => {
    res.setHeader('Cache-Control', 'max-age=60')
    res.end('body')
  })
  const plain = await startVcl(t, `vcl 4.1;\n${backend('app', app.address)}sub vcl_recv { set req.http.X-R = "1"; }\n`)
  await fetch(`${plain.url}/p`).then((r) => r.text())
  const hit = await fetch(`${plain.url}/p`)
  assert.equal(await hit.text(), 'body')
  assert.match(hit.headers.get('x-varnish') ?? '', /^\d+ \d+$/)
  assert.equal(hit.headers.get('age'), '0')
  assert.match(hit.headers.get('via') ?? '', /caching-router/)
  const own = await startVcl(
    t,
    `vcl 4.1;\n${backend('app', app.address)}sub vcl_builtin_deliver { set resp.http.X-D = "builtin-deliver"; }
sub vcl_hit { if (obj.hits > 0) { return (synth(299, "Seen")); } }\n`,
  )
  const miss = await fetch(`${own.url}/o`)
  assert.equal(miss.headers.get('x-d'), 'builtin-deliver')
  await miss.text()
  const first = await fetch(`${own.url}/o`)
  assert.equal(first.headers.get('x-d'), 'builtin-deliver', 'vcl_deliver ran on the hit')
  await first.text()
  assert.equal((await fetch(`${own.url}/o`)).status, 299, 'vcl_hit ran')
})

test('hits of one object: Age grows from the stored head; a refreshed object is delivered with its own head', async (t) => {
  const app = await startOrigin(t, (req, res, n) => {
    if (req.method === 'POST') {
      res.end('posted')
      return
    }
    res.setHeader('Cache-Control', 'max-age=600')
    // The first answer had aged 5 s already at the origin.
    if (n === 1) res.setHeader('Age', '5')
    res.setHeader('X-Gen', String(n))
    res.end(`gen ${n}`)
  })
  const r = await startVcl(t, `vcl 4.1;\n${backend('app', app.address)}sub vcl_recv { set req.http.X-R = "1"; }\n`)
  const miss = await fetch(`${r.url}/age`)
  assert.equal(await miss.text(), 'gen 1')
  const hit1 = await fetch(`${r.url}/age`)
  await hit1.text()
  const age1 = Number(hit1.headers.get('age'))
  assert.ok(age1 >= 5, `Age ${age1}`)
  r.clock.advance(1100)
  const hit2 = await fetch(`${r.url}/age`)
  await hit2.text()
  assert.ok(Number(hit2.headers.get('age')) > age1, `Age ${hit2.headers.get('age')} after ${age1}`)
  assert.equal(hit2.headers.get('x-gen'), '1')
  // RFC 9111 §4.4: a successful POST invalidates the URL; the next GET stores a new object.
  assert.equal(await (await fetch(`${r.url}/age`, { method: 'POST', body: 'x' })).text(), 'posted')
  assert.equal(await (await fetch(`${r.url}/age`)).text(), 'gen 3')
  const fresh = await fetch(`${r.url}/age`)
  assert.equal(await fresh.text(), 'gen 3')
  assert.equal(fresh.headers.get('x-gen'), '3')
  assert.equal(fresh.headers.get('age'), '0')
  assert.match(fresh.headers.get('x-varnish') ?? '', /^\d+ \d+$/)
  assert.equal(app.seen.length, 3)
})

test('return (retry) from vcl_backend_response fetches again, up to max_retries, then 503', async (t) => {
  let n = 0
  const app = await startOrigin(t, (req, res) => {
    n++
    res.statusCode = req.url === '/ok-third' && n % 3 === 0 ? 200 : 500
    res.end(`try ${n}`)
  })
  const r = await startVcl(
    t,
    `vcl 4.1;
${backend('app', app.address)}
sub vcl_backend_response {
  set beresp.http.X-Retries = bereq.retries;
  if (beresp.status >= 500) { return (retry); }
  set beresp.ttl = 60s;
}
`,
  )
  // A miss: the third fetch is the one stored and delivered, with bereq.retries 2.
  const ok = await fetch(`${r.url}/ok-third`)
  assert.equal(ok.status, 200)
  assert.equal(ok.headers.get('x-retries'), '2')
  assert.equal(await ok.text(), 'try 3')
  assert.equal(app.seen.length, 3)
  // Never good: the first fetch and max_retries (4) more, then vcl_backend_error's 503.
  const bad = await fetch(`${r.url}/never`)
  assert.equal(bad.status, 503)
  assert.equal(app.seen.length, 3 + 5)
})

test("the fields a client's Connection names are not forwarded, but VCL may set one under such a name", async (t) => {
  const app = await startOrigin(t, (req, res) => res.end(`${req.headers.foo ?? '-'} ${req.headers.fromvcl ?? '-'}`))
  const r = await startVcl(t, `vcl 4.1;\n${backend('app', app.address)}sub vcl_recv { set req.http.FromVCL = "123"; return (pass); }\n`)
  // varnishd (http_DoConnection) marks Foo when the request comes in; FromVCL is VCL's own.
  const { responses } = await rawExchange(r.port, 'GET /c HTTP/1.1\r\nHost: x\r\nFoo: bar\r\nConnection: FromVCL, foo, close\r\n\r\n')
  assert.equal(responses[0]?.body, '- 123')
})
