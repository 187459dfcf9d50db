import assert from 'node:assert/strict'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { describe, test } from 'node:test'
import { Backend, createRequestContext, Director, type ProbeResult, ProbeRunner, type VclContext, VclProgram } from '../src/vcl/index.js'

// Health checks over real sockets against loopback servers, and directors skipping sick backends.

interface Origin {
  port: number
  requests: string[]
  status: number
  close(): Promise<void>
}

async function origin(status = 200): Promise<Origin> {
  const o = { port: 0, requests: [] as string[], status, close: async () => {} }
  const server = http.createServer((req, res) => {
    o.requests.push(`${req.method} ${req.url} HTTP/${req.httpVersion} host=${req.headers.host ?? ''}`)
    res.writeHead(o.status, { 'Content-Length': '2' })
    res.end('ok')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  o.port = (server.address() as AddressInfo).port
  o.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  return o
}

/** Waits for `count` probe results (bounded: the probe interval is short and count small). */
function collect(count: number): { results: ProbeResult[]; onResult: (r: ProbeResult) => void; done: Promise<ProbeResult[]> } {
  const results: ProbeResult[] = []
  let resolve: (r: ProbeResult[]) => void = () => {}
  const done = new Promise<ProbeResult[]>((r) => {
    resolve = r
  })
  return {
    results,
    onResult: (r) => {
      results.push(r)
      if (results.length === count) resolve(results)
    },
    done,
  }
}

function ctx(): VclContext {
  const ip = { address: '127.0.0.1', port: 1, family: 4 as const }
  return createRequestContext({ method: 'GET', url: '/', proto: 'HTTP/1.1', headers: ['Host', 'h'], client: ip, local: ip, xid: '1' })
}

function vcl(ports: number[], probe: string, extra = ''): string {
  const backends = ports
    .map((p, i) => `backend b${i} { .host = "127.0.0.1"; .port = "${p}"; .probe = ${probe}; }`)
    .join('\n')
  return `vcl 4.1;\nimport std;\nimport directors;\n${backends}\n${extra}`
}

describe('probes', { timeout: 20_000 }, () => {
  test('a backend becomes healthy after .threshold good probes, sending GET .url with Host', async (t) => {
    const o = await origin(200)
    t.after(() => o.close())
    const p = new VclProgram('t', {
      name: 't.vcl',
      text: vcl([o.port], '{ .url = "/health"; .interval = 20ms; .window = 3; .threshold = 2; .initial = 0; }', 'sub vcl_recv { set req.backend_hint = b0; }'),
    })
    const b0 = p.compiled.backends.get('b0') as Backend
    assert.equal(b0.healthy(), false, 'initial 0 < threshold 2: sick at start')
    const c = collect(2)
    p.startProbes(c.onResult)
    t.after(() => p.stopProbes())
    const [first, second] = await c.done
    assert.deepEqual([first?.good, first?.healthy], [true, false])
    assert.deepEqual([second?.good, second?.healthy], [true, true])
    assert.equal(b0.healthy(), true)
    assert.equal(o.requests[0], `GET /health HTTP/1.1 host=127.0.0.1`)
  })

  test('an unexpected status, a refused connection and a timeout are bad probes', async (t) => {
    const bad = await origin(500)
    t.after(() => bad.close())
    const refused = await origin(200)
    await refused.close()
    const held = new Set<net.Socket>()
    const silent = net.createServer((s) => {
      held.add(s)
      s.on('error', () => {})
    })
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    t.after(
      () =>
        new Promise<void>((resolve) => {
          silent.close(() => resolve())
          for (const s of held) s.destroy()
        }),
    )
    const probe = { url: '/', expectedResponse: 200, timeout: 0.1, interval: 60, window: 1, threshold: 1, initial: 1 }
    for (const [port, detail] of [
      [bad.port, /500/],
      [refused.port, /ECONNREFUSED/],
      [(silent.address() as AddressInfo).port, /timeout/],
    ] as const) {
      const backend = new Backend({ name: 'x', host: '127.0.0.1', port, probe })
      assert.equal(backend.healthy(), true, 'initial >= threshold: healthy at start')
      const c = collect(1)
      const runner = new ProbeRunner(backend, probe, c.onResult)
      runner.start()
      const [r] = await c.done
      runner.stop()
      assert.equal(r?.good, false)
      assert.match(r?.detail ?? '', detail)
      assert.equal(backend.healthy(), false)
    }
  })

  test('stop() ends a probe in flight: its connection closes, no result is reported', async (t) => {
    let serverSide: net.Socket | undefined
    let connected: () => void = () => {}
    const arrived = new Promise<void>((r) => {
      connected = r
    })
    const silent = net.createServer((s) => {
      serverSide = s
      s.on('error', () => {})
      connected()
    })
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    t.after(() => new Promise<void>((resolve) => silent.close(() => resolve())))
    const probe = { url: '/', expectedResponse: 200, timeout: 60, interval: 60, window: 1, threshold: 1, initial: 1 }
    const backend = new Backend({ name: 'x', host: '127.0.0.1', port: (silent.address() as AddressInfo).port, probe })
    const results: ProbeResult[] = []
    const runner = new ProbeRunner(backend, probe, (r) => results.push(r))
    runner.start()
    await arrived
    const closed = new Promise<void>((resolve) => serverSide?.once('close', () => resolve()))
    runner.stop()
    await closed
    assert.deepEqual(results, [])
    assert.equal(backend.healthy(), true, 'state unchanged by an aborted probe')
  })

  test('.expected_response and a raw .request are honoured', async (t) => {
    const o = await origin(204)
    t.after(() => o.close())
    const p = new VclProgram('t', {
      name: 't.vcl',
      text: vcl(
        [o.port],
        '{ .request = "HEAD /ping HTTP/1.1" "Host: probe.local" "Connection: close"; .expected_response = 204; .interval = 1s; .threshold = 1; .initial = 0; }',
        'sub vcl_recv { if (!std.healthy(b0)) { return (synth(503)); } }',
      ),
    })
    const c = collect(1)
    p.startProbes(c.onResult)
    t.after(() => p.stopProbes())
    const [r] = await c.done
    assert.equal(r?.good, true)
    assert.equal(o.requests[0], 'HEAD /ping HTTP/1.1 host=probe.local')
    assert.equal(p.run('recv', ctx()).action, 'hash', 'std.healthy() sees the probed state')
  })

  test('a healthy backend turns sick when its window fills with bad probes, and recovers', async (t) => {
    const o = await origin(200)
    t.after(() => o.close())
    const probe = { url: '/', expectedResponse: 200, timeout: 1, interval: 0.02, window: 3, threshold: 2, initial: 3 }
    const backend = new Backend({ name: 'x', host: '127.0.0.1', port: o.port, probe })
    const states: boolean[] = []
    let resolve: () => void = () => {}
    const done = new Promise<void>((r) => {
      resolve = r
    })
    const runner = new ProbeRunner(backend, probe, (r) => {
      states.push(r.healthy)
      // Flip the origin to failing, then back, and stop after it recovered (bounded count).
      if (states.length === 1) o.status = 503
      if (states.length >= 2 && !r.healthy) o.status = 200
      if ((states.includes(false) && r.healthy) || states.length >= 20) resolve()
    })
    t.after(() => runner.stop())
    runner.start()
    await done
    assert.equal(states[0], true)
    assert.ok(states.includes(false), `went sick: ${states.join(',')}`)
    assert.equal(states.at(-1), true, 'recovered')
  })
})

describe('directors', () => {
  const be = (name: string, healthy = true) => {
    const b = new Backend({ name, host: '127.0.0.1', port: 1 })
    b.setHealthy(healthy)
    return b
  }

  test('round_robin rotates over healthy members and skips sick ones', () => {
    const [a, b, c] = [be('a'), be('b', false), be('c')]
    const d = new Director('rr', 'round_robin')
    for (const x of [a, b, c]) d.addBackend(x)
    const picks = Array.from({ length: 6 }, () => d.resolve(ctx())?.name)
    assert.deepEqual(picks, ['a', 'c', 'a', 'c', 'a', 'c'])
    a.setHealthy(false)
    c.setHealthy(false)
    assert.equal(d.resolve(ctx()), undefined)
    assert.equal(d.healthy(), false)
  })

  test('fallback takes the first healthy member', () => {
    const [a, b] = [be('a', false), be('b')]
    const d = new Director('fb', 'fallback')
    d.addBackend(a)
    d.addBackend(b)
    assert.equal(d.resolve(ctx())?.name, 'b')
    a.setHealthy(true)
    assert.equal(d.resolve(ctx())?.name, 'a')
  })

  test('random only picks healthy members with weight', () => {
    const [a, b, c] = [be('a'), be('b', false), be('c')]
    const d = new Director('rnd', 'random')
    d.addBackend(a, 1)
    d.addBackend(b, 5)
    d.addBackend(c, 0)
    for (let i = 0; i < 50; i++) assert.equal(d.resolve(ctx())?.name, 'a')
  })

  test('hash is stable per key and moves keys off sick members', () => {
    const members = ['a', 'b', 'c', 'd'].map((n) => be(n))
    const d = new Director('h', 'hash')
    for (const m of members) d.addBackend(m, 1)
    const keys = Array.from({ length: 40 }, (_, i) => `user-${i}`)
    const first = keys.map((k) => d.pickByKey([k])?.resolve(ctx())?.name)
    assert.deepEqual(
      keys.map((k) => d.pickByKey([k])?.resolve(ctx())?.name),
      first,
    )
    assert.ok(new Set(first).size > 1, 'keys spread over members')
    ;(members[0] as Backend).setHealthy(false)
    for (const k of keys) assert.notEqual(d.pickByKey([k])?.resolve(ctx())?.name, 'a')
  })

  test('vcl_init builds directors that vcl_recv hands out; sick members are skipped', () => {
    const p = new VclProgram('t', {
      name: 't.vcl',
      text: `vcl 4.1;
        import directors;
        backend a { .host = "127.0.0.1"; .port = "1"; }
        backend b { .host = "127.0.0.1"; .port = "2"; }
        sub vcl_init {
          new rr = directors.round_robin();
          rr.add_backend(a);
          rr.add_backend(b);
          new h = directors.hash();
          h.add_backend(a, 1);
          h.add_backend(b, 1);
        }
        sub vcl_recv {
          if (req.url ~ "^/h/") { set req.backend_hint = h.backend(req.url); } else { set req.backend_hint = rr.backend(); }
          return (hash);
        }`,
    })
    assert.deepEqual(p.init(ctx()), { action: 'ok' })
    const names: (string | undefined)[] = []
    for (let i = 0; i < 4; i++) {
      const c = ctx()
      p.run('recv', c)
      names.push(c.req.backendHint?.resolve(c)?.name)
    }
    assert.deepEqual(names, ['a', 'b', 'a', 'b'])
    ;(p.compiled.backends.get('a') as Backend).setHealthy(false)
    for (let i = 0; i < 3; i++) {
      const c = ctx()
      p.run('recv', c)
      assert.equal(c.req.backendHint?.resolve(c)?.name, 'b')
    }
  })
})
