import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, type TestContext, test } from 'node:test'
import tls from 'node:tls'
import { exitOf, get, heldBackend, load, quickBackend } from './daemon-fixtures.js'
import { accepts, freePort } from './ports.js'
import { type Daemon, REPO, runCli, startDaemon } from './processes.js'

// --metrics (issue 20): each daemon scraped over real sockets while clients use it, the
// counters checked against what the clients did; /readyz turning 503 while the listeners still
// accept; a taken metrics address refused in one line. Assertions poll; none measures time.

const FIX = `${REPO}packages/tls-terminator/test/fixtures/`

async function tempDir(t: TestContext, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function started(t: TestContext, name: string, args: string[]): Promise<Daemon> {
  const d = await startDaemon(name, args)
  t.after(() => d.stop())
  return d
}

/** `name{labels}` -> value, from Prometheus text; every line must be a comment or a sample. */
async function scrape(port: number): Promise<Map<string, number>> {
  const a = await get(port, '/metrics')
  assert.equal(a.status, 200, a.body)
  const out = new Map<string, number>()
  for (const line of a.body.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line)
    assert.ok(m, `not a sample line: ${JSON.stringify(line)}`)
    out.set(m[1] as string, Number(m[2]))
  }
  return out
}

/** The sum of every sample of a family, whatever its labels. */
function total(m: Map<string, number>, family: string): number {
  let n = 0
  for (const [k, v] of m) if (k === family || k.startsWith(`${family}{`)) n += v
  return n
}

/** Polls (bounded, 20 s) until `check` passes; returns its last value. */
async function until<T>(what: string, probe: () => Promise<T>, check: (v: T) => boolean): Promise<T> {
  let v = await probe()
  for (let i = 0; i < 400 && !check(v); i++) {
    await new Promise((r) => setTimeout(r, 50))
    v = await probe()
  }
  assert.ok(check(v), `${what}: last seen ${JSON.stringify(v instanceof Map ? [...v] : v)}`)
  return v
}

const readyz = async (port: number) => (await get(port, '/readyz')).status

/**
 * A histogram's series for one label set (`labels` as written inside the braces, '' for none):
 * the buckets are common's LATENCY_BUCKETS and cumulative, `+Inf` equals `_count`, `_sum` is
 * positive; returns `_count`, for the caller to compare with what the clients did.
 */
function histogramCount(m: Map<string, number>, name: string, labels = ''): number {
  const pre = labels === '' ? '' : `${labels},`
  const bounds = ['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']
  const buckets = bounds.map((le) => m.get(`${name}_bucket{${pre}le="${le}"}`))
  for (const [i, b] of buckets.entries()) assert.equal(typeof b, 'number', `${name}{${pre}le="${bounds[i]}"} missing`)
  for (let i = 1; i < buckets.length; i++) assert.ok((buckets[i] as number) >= (buckets[i - 1] as number), `${name} buckets not cumulative`)
  const count = m.get(labels === '' ? `${name}_count` : `${name}_count{${labels}}`)
  assert.equal(buckets.at(-1), count)
  assert.ok((m.get(labels === '' ? `${name}_sum` : `${name}_sum{${labels}}`) ?? 0) > 0)
  return count as number
}

/** Load on `port` while scraping `metricsPort`: every scrape answers and `family` never goes down. */
async function loadWhileScraping(port: number, metricsPort: number, family: string, count: number): Promise<(number | string)[]> {
  let done = false
  const seen: number[] = []
  const scraper = (async () => {
    while (!done) seen.push(total(await scrape(metricsPort), family))
  })()
  const results = await load(port, count, 4)
  done = true
  await scraper
  assert.ok(seen.length > 0)
  for (let i = 1; i < seen.length; i++) assert.ok((seen[i] as number) >= (seen[i - 1] as number), `${family} went down: ${seen}`)
  return results
}

describe('--metrics: counters against what the clients did', () => {
  test('caching-router: prometheus_varnish_exporter names, summed from the child by the manager', async (t) => {
    const backend = await quickBackend(t)
    const mport = await freePort()
    const d = await started(t, 'caching-router', ['-a', '127.0.0.1:0', '-b', `127.0.0.1:${backend}`, '--metrics', `127.0.0.1:${mport}`])
    await until('/readyz', () => readyz(mport), (s) => s === 200)
    const results = await loadWhileScraping(d.port, mport, 'varnish_main_client_req', 20)
    assert.deepEqual(results, Array(20).fill(200))
    let bodyBytes = 0
    for (let i = 0; i < 20; i++) bodyBytes += `ok /load/${i}\n`.length
    for (let i = 0; i < 10; i++) {
      const a = await get(d.port, '/load/0')
      assert.equal(a.status, 200)
      bodyBytes += a.body.length
    }
    const m = await scrape(mport)
    assert.equal(m.get('varnish_main_client_req'), 30)
    assert.equal(m.get('varnish_main_cache_miss'), 20)
    assert.equal(m.get('varnish_main_cache_hit'), 10)
    assert.equal(m.get('varnish_backend_req'), 20)
    assert.equal(m.get('varnish_backend_fail'), 0)
    assert.equal(m.get('varnish_main_fetch{code="failed"}'), 0)
    assert.equal(m.get('varnish_main_s_resp_bodybytes'), bodyBytes)
    assert.equal(m.get('varnish_up'), 1)
    assert.equal(histogramCount(m, 'caching_router_request_duration_seconds', 'handling="miss"'), 20)
    assert.equal(histogramCount(m, 'caching_router_request_duration_seconds', 'handling="hit"'), 10)
    assert.ok((m.get('process_resident_memory_bytes') ?? 0) > 0)
    assert.ok((m.get('process_start_time_seconds') ?? 0) > 1.7e9)
    assert.equal((await get(mport, '/healthz')).status, 200)
  })

  test('static-server, worker_processes 2: nginx-prometheus-exporter names, summed over the workers', async (t) => {
    const dir = await tempDir(t, 'metrics-static-')
    await mkdir(join(dir, 'html'))
    await writeFile(join(dir, 'html', 'a.txt'), 'hello\n')
    await writeFile(
      join(dir, 'nginx.conf'),
      `worker_processes 2;\npid ${dir}/run.pid;\nerror_log stderr info;\nevents {}\nhttp { access_log off; server { listen 127.0.0.1:0; root ${dir}/html; } }\n`,
    )
    const mport = await freePort()
    const d = await started(t, 'static-server', ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '--metrics', `127.0.0.1:${mport}`])
    await until('/readyz', () => readyz(mport), (s) => s === 200)
    const results = await loadWhileScraping(d.port, mport, 'nginx_http_requests_total', 30)
    assert.deepEqual(results, Array(30).fill(404))
    // Every client connection closed (Connection: close): the states count nothing once the
    // workers saw the closes.
    const m = await until('connections closed', () => scrape(mport), (v) => v.get('nginx_connections_active') === 0)
    assert.equal(m.get('nginx_http_requests_total'), 30)
    assert.equal(m.get('nginx_connections_accepted'), 30)
    assert.equal(m.get('nginx_connections_handled'), 30)
    assert.equal(m.get('nginx_connections_reading'), 0)
    assert.equal(m.get('nginx_connections_writing'), 0)
    assert.equal(m.get('nginx_connections_waiting'), 0)
    assert.equal(m.get('nginx_up'), 1)
    assert.equal(histogramCount(m, 'static_server_request_duration_seconds'), 30)
  })

  test('tls-terminator --workers 2: connections, handshakes by version and cipher, failures, bytes, backend failures', async (t) => {
    const backend = await quickBackend(t)
    const mport = await freePort()
    const common = ['--cert', `${FIX}localhost.crt`, '--key', `${FIX}localhost.key`]
    const d = await started(t, 'tls-terminator', ['--accept', '127.0.0.1:0', '--connect', String(backend), ...common, '--workers', '2', '--metrics', `127.0.0.1:${mport}`])
    await until('/readyz', () => readyz(mport), (s) => s === 200)
    let sent = 0
    let received = 0
    for (let i = 0; i < 12; i++) {
      const request = `GET /tls/${i} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`
      const answer = await exchangeOverTls(d.port, request, i % 2 === 0 ? 'TLSv1.2' : 'TLSv1.3')
      assert.match(answer, /^HTTP\/1\.1 200 /)
      sent += request.length
      received += Buffer.byteLength(answer)
    }
    // Plain text to a TLS port: a handshake failure.
    const raw = net.connect(d.port, '127.0.0.1')
    raw.on('error', () => undefined)
    raw.end('GET / HTTP/1.1\r\n\r\n')
    await once(raw, 'close')
    const m = await until('13 connections, all closed', () => scrape(mport), (v) => v.get('tls_terminator_connections_total') === 13 && v.get('tls_terminator_connections_active') === 0)
    assert.equal(total(m, 'tls_terminator_handshakes_total'), 12)
    const byVersion = (v: string) => [...m].filter(([k]) => k.startsWith(`tls_terminator_handshakes_total{version="${v}",cipher="`)).reduce((n, [, x]) => n + x, 0)
    assert.equal(byVersion('TLSv1.2'), 6)
    assert.equal(byVersion('TLSv1.3'), 6)
    assert.equal(total(m, 'tls_terminator_handshake_failures_total'), 1)
    assert.equal(m.get('tls_terminator_received_bytes_total'), sent)
    assert.equal(m.get('tls_terminator_sent_bytes_total'), received)
    assert.equal(total(m, 'tls_terminator_backend_connect_failures_total'), 0)
    // The plain-text client never finished a handshake: 12 of each, not 13.
    assert.equal(histogramCount(m, 'tls_terminator_handshake_duration_seconds'), 12)
    assert.equal(histogramCount(m, 'tls_terminator_connection_duration_seconds'), 12)

    // A backend nobody listens on: one failed attempt, counted under its service.
    const closed = await freePort()
    const mport2 = await freePort()
    const lone = await started(t, 'tls-terminator', ['--accept', '127.0.0.1:0', '--connect', String(closed), ...common, '--metrics', `127.0.0.1:${mport2}`])
    await exchangeOverTls(lone.port, 'GET / HTTP/1.1\r\n\r\n', 'TLSv1.3').catch(() => '')
    const m2 = await until('a backend failure', () => scrape(mport2), (v) => total(v, 'tls_terminator_backend_connect_failures_total') === 1)
    assert.equal(m2.get('tls_terminator_backend_connect_failures_total{service="default"}'), 1)
  })
})

/** One request over TLS at the given version, read to the close: the raw answer. */
function exchangeOverTls(port: number, request: string, version: tls.SecureVersion): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, minVersion: version, maxVersion: version }, () =>
      s.write(request),
    )
    let text = ''
    s.setEncoding('utf8')
    s.on('data', (c: string) => {
      text += c
    })
    s.on('end', () => resolve(text))
    s.on('close', () => resolve(text))
    s.on('error', reject)
    s.setTimeout(30_000, () => s.destroy(new Error('no answer in 30 s')))
  })
}

describe('/readyz: 503 from the stop signal on, while the listeners still accept', () => {
  test('caching-router (manager): SIGQUIT with a request in flight; readiness 503, new requests still served, scrapes answered', async (t) => {
    const backend = await heldBackend(t)
    const mport = await freePort()
    const d = await started(t, 'caching-router', ['-a', '127.0.0.1:0', '-b', `127.0.0.1:${backend.port}`, '--metrics', `127.0.0.1:${mport}`, '--drain-delay', '600'])
    await until('/readyz', () => readyz(mport), (s) => s === 200)
    const inFlight = get(d.port, '/in-flight')
    await backend.holding(1)
    const exited = exitOf(d)
    d.child.kill('SIGQUIT')
    await until('/readyz 503', () => readyz(mport), (s) => s === 503)
    // The listener still accepts and serves: the orchestrator has time to stop sending.
    assert.equal(await accepts(d.port), true)
    backend.release()
    assert.deepEqual(await inFlight, { status: 200, body: 'held /in-flight\n' })
    assert.deepEqual(await get(d.port, '/after'), { status: 200, body: 'held /after\n' })
    assert.equal((await get(mport, '/healthz')).status, 200)
    assert.equal((await scrape(mport)).get('varnish_main_client_req'), 2)
    // A second stop order ends the delay: the drain starts and the process exits 0.
    d.child.kill('SIGTERM')
    const [code, signal] = await exited
    assert.equal(signal, null, d.output())
    assert.equal(code, 0, d.output())
  })

  test('static-server (one process): SIGQUIT with a request in flight; readiness 503 while it still accepts', async (t) => {
    const backend = await heldBackend(t)
    const mport = await freePort()
    const dir = await tempDir(t, 'readyz-static-')
    const d = await started(t, 'static-server', ['--root', dir, '--listen', '127.0.0.1:0', '--proxy', `127.0.0.1:${backend.port}`, '--metrics', `127.0.0.1:${mport}`, '--drain-delay', '600'])
    await until('/readyz', () => readyz(mport), (s) => s === 200)
    const inFlight = get(d.port, '/')
    await backend.holding(1)
    const exited = exitOf(d)
    d.child.kill('SIGQUIT')
    await until('/readyz 503', () => readyz(mport), (s) => s === 503)
    assert.equal(await accepts(d.port), true)
    backend.release()
    assert.equal((await inFlight).status, 200)
    d.child.kill('SIGTERM')
    const [code] = await exited
    assert.equal(code, 0, d.output())
  })
})

describe('/readyz polled through a stop without --drain-delay: never ready once the listener refuses', () => {
  // The poller asks the listener first and /readyz second: a refused connection followed by a
  // 200 would mean the listener closed while readiness still said ready (an orchestrator
  // would keep sending to a closed port). A request held in flight keeps the graceful stop
  // (and the process) going, so a wrong order would be seen for as long as it is held.
  test('tls-terminator: SIGQUIT while a client polls', async (t) => {
    const backend = await heldBackend(t)
    const mport = await freePort()
    const common = ['--cert', `${FIX}localhost.crt`, '--key', `${FIX}localhost.key`]
    const d = await started(t, 'tls-terminator', ['--accept', '127.0.0.1:0', '--connect', String(backend.port), ...common, '--metrics', `127.0.0.1:${mport}`])
    await until('/readyz', () => readyz(mport), (s) => s === 200)
    const inFlight = exchangeOverTls(d.port, 'GET /held HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', 'TLSv1.3')
    await backend.holding(1)
    const seen: [boolean, number][] = []
    let polling = true
    const poller = (async () => {
      while (polling) {
        const accepted = await accepts(d.port)
        seen.push([accepted, await readyz(mport)])
      }
    })()
    await until('a few polls', async () => seen.length, (n) => n >= 3)
    const exited = exitOf(d)
    d.child.kill('SIGQUIT')
    await until('the listener refuses', async () => seen.filter(([a]) => !a).length, (n) => n >= 3)
    polling = false
    await poller
    assert.deepEqual(
      seen.filter(([accepted, status]) => !accepted && status !== 503),
      [],
      `refused while /readyz was not 503: ${JSON.stringify(seen)}`,
    )
    assert.ok(seen.some(([accepted, status]) => accepted && status === 200))
    backend.release()
    assert.match(await inFlight, /^HTTP\/1\.1 200 /)
    const [code] = await exited
    assert.equal(code, 0, d.output())
  })
})

describe('--metrics ADDR taken: exit 1 in one line, before serving', () => {
  for (const [name, args] of [
    ['caching-router', ['-a', '127.0.0.1:0', '-b', '127.0.0.1:9']],
    ['static-server', ['--listen', '127.0.0.1:0', '--root', '.', '--proxy', '127.0.0.1:9']],
    ['tls-terminator', ['--accept', '127.0.0.1:0', '--connect', '9', '--cert', `${FIX}localhost.crt`, '--key', `${FIX}localhost.key`]],
    ['tls-terminator', ['--accept', '127.0.0.1:0', '--connect', '9', '--cert', `${FIX}localhost.crt`, '--key', `${FIX}localhost.key`, '--workers', '2']],
  ] as [string, string[]][]) {
    test(`${name}${args.includes('--workers') ? ' --workers 2' : ''}`, async (t) => {
      const holder = net.createServer().listen(0, '127.0.0.1')
      await once(holder, 'listening')
      t.after(() => holder.close())
      const port = (holder.address() as net.AddressInfo).port
      const r = await runCli(name, [...args, '--metrics', `127.0.0.1:${port}`])
      assert.equal(r.code, 1, r.stdout + r.stderr)
      assert.equal(r.stderr, `${name}: --metrics 127.0.0.1:${port}: address already in use\n`)
      assert.doesNotMatch(r.stdout, /listening on|serving/)
    })
  }
})
