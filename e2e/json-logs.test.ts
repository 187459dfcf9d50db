import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, type TestContext, test } from 'node:test'
import tls from 'node:tls'
import { get } from './daemon-fixtures.js'
import { freePort } from './ports.js'
import { type Daemon, REPO, runCli, startDaemon, waitForOutput } from './processes.js'

// issue 20, logs: `--log-format json` on each daemon. Every line of its own log is one JSON
// object with timestamp, level, name and message; a line about one connection or request
// carries its id as a field (tls-terminator `conn`, caching-router `xid`, static-server `conn`
// and `req`), and the message does not repeat it. Access logs stay in the real programs' formats.

const FIX = `${REPO}packages/tls-terminator/test/fixtures/`

async function started(t: TestContext, name: string, args: string[]): Promise<Daemon> {
  const d = await startDaemon(name, args)
  t.after(() => d.stop())
  return d
}

interface JsonLine {
  timestamp: string
  level: string
  name: string
  message: string
  [field: string]: unknown
}

/** The daemon's own lines (every line that is not an access line), each parsed as JSON. */
function ownLines(d: Daemon, isAccessLine: (l: string) => boolean = () => false): JsonLine[] {
  return d
    .output()
    .split('\n')
    .filter((l) => l !== '' && !isAccessLine(l))
    .map((l) => {
      const v = JSON.parse(l) as JsonLine
      assert.equal(typeof v.timestamp, 'string', l)
      assert.ok(!Number.isNaN(Date.parse(v.timestamp)), l)
      assert.match(v.level, /^(error|warn|info|debug)$/, l)
      assert.equal(typeof v.name, 'string', l)
      assert.equal(typeof v.message, 'string', l)
      return v
    })
}

/** Polls (bounded, 10 s) until a line passes `check`. */
async function lineWhere(d: Daemon, check: (l: JsonLine) => boolean, isAccessLine?: (l: string) => boolean): Promise<JsonLine> {
  for (let i = 0; i < 200; i++) {
    const hit = ownLines(d, isAccessLine).find(check)
    if (hit) return hit
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`no such line; ${d.name} wrote:\n${d.output()}`)
}

/** A port nothing listens on: connections to it are refused. */
async function closedPort(): Promise<number> {
  return freePort()
}

describe('--log-format json', () => {
  test('tls-terminator: a backend failure is a JSON line with the connection id as a field', async (t) => {
    const d = await started(t, 'tls-terminator', [
      '--accept', '127.0.0.1:0', '--connect', String(await closedPort()),
      '--cert', `${FIX}localhost.crt`, '--key', `${FIX}localhost.key`, '--log-format', 'json',
    ])
    for (let i = 0; i < 2; i++) {
      const s = tls.connect({ host: '127.0.0.1', port: d.port, rejectUnauthorized: false })
      s.on('error', () => undefined)
      await once(s, 'close')
    }
    const first = await lineWhere(d, (l) => /backend .* failed/.test(l.message) && l.conn === 1)
    const second = await lineWhere(d, (l) => /backend .* failed/.test(l.message) && l.conn === 2)
    assert.equal(first.level, 'warn')
    assert.equal(first.name, 'tls-terminator')
    for (const l of [first, second]) assert.doesNotMatch(l.message, /connection \d/)
    assert.ok(ownLines(d).some((l) => /^listening on /.test(l.message)))
  })

  test('caching-router: a failed backend fetch carries the request xid; access lines stay varnishncsa', async (t) => {
    const d = await started(t, 'caching-router', ['-a', '127.0.0.1:0', '-b', `127.0.0.1:${await closedPort()}`, '--log-format', 'json'])
    const a = await get(d.port, '/x')
    assert.equal(a.status, 503)
    const isNcsa = (l: string) => /^127\.0\.0\.1 - - \[[^\]]+\] "GET http:\/\/[^ ]+\/x HTTP\/1\.1" 503 /.test(l)
    const failed = await lineWhere(d, (l) => /^backend fetch failed/.test(l.message), isNcsa)
    assert.equal(typeof failed.xid, 'number')
    assert.equal(failed.level, 'warn')
    // The access line is buffered (daemon/access-log-writer.ts): it comes a moment later.
    await waitForOutput(d, /"GET http:\/\/[^ ]+\/x HTTP\/1\.1" 503 /)
    ownLines(d, isNcsa)
  })

  test('static-server: an error line of a request carries its connection and request ids', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'json-logs-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    await mkdir(join(dir, 'html'))
    await writeFile(
      join(dir, 'nginx.conf'),
      `pid ${dir}/run.pid;\nerror_log stderr info;\nevents {}\nhttp { access_log off; server { listen 127.0.0.1:0; root ${dir}/html; location /secret { deny all; } } }\n`,
    )
    const d = await started(t, 'static-server', ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '--log-format', 'json'])
    // Two requests on one keep-alive connection, then one on another.
    const s = net.connect(d.port, '127.0.0.1')
    s.write('GET /secret HTTP/1.1\r\nHost: a\r\n\r\nGET /secret/2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    s.resume()
    await once(s, 'close')
    assert.equal((await get(d.port, '/secret/3')).status, 403)
    const lines = [1, 2, 3].map((n) => lineWhere(d, (l) => /^access forbidden by rule/.test(l.message) && l.message.includes(n === 1 ? '/secret ' : `/secret/${n} `)))
    const [a, b, c] = await Promise.all(lines)
    assert.ok(a && b && c)
    assert.equal(a.level, 'error')
    assert.equal(a.conn, b.conn)
    assert.notEqual(a.conn, c.conn)
    assert.deepEqual(new Set([a.req, b.req, c.req]).size, 3)
  })

  test("caching-router --access-log-format/--access-log-json: varnishncsa's -F -j lines from the CLI; bad formats refused in its words", async (t) => {
    const d = await started(t, 'caching-router', [
      '-a', '127.0.0.1:0', '-b', `127.0.0.1:${await closedPort()}`, '--log-format', 'json',
      '--access-log-format', '{"url":"%U","status":%s,"ua":"%{User-Agent}i","vxid":%{Varnish:vxid}x}', '--access-log-json',
    ])
    assert.equal((await get(d.port, '/j?q=1')).status, 503)
    await waitForOutput(d, /"url":"\/j"/)
    const lines = d.output().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>)
    const access = lines.find((l) => l.url === '/j')
    assert.deepEqual({ ...access, vxid: typeof access?.vxid }, { url: '/j', status: 503, ua: '', vxid: 'number' })
    for (const [format, message] of [
      ['%Z', 'Unknown format specifier at: %Z'],
      ['%{Varnish:foo}x', 'Unknown formatting extension: Varnish:foo'],
      ['%{Content-Type}o', '-F: %{Content-Type}o is not supported by caching-router'],
    ] as const) {
      const r = await runCli('caching-router', ['-a', '127.0.0.1:0', '-b', '127.0.0.1:9', '--access-log-format', format])
      assert.equal(r.code, 2, r.stderr)
      assert.ok(r.stderr.startsWith(`caching-router: ${message}`), r.stderr)
    }
  })
})
