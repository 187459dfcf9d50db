import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { loadNginxConf } from '../src/config/nginx-conf.js'
import { createStaticServer } from '../src/index.js'
import { captureLogger, freePort, get, hasNginx, makeFixtures, REPO, rawRequest, startNginx } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'

/**
 * Every nginx.conf regex match is bounded (issue 15). On `^/(a+)+$` against 40 `a` and a `b`,
 * nginx 1.22 reaches PCRE2's match limit and answers as ngx_http_regex_exec fails: 500 for a
 * location, `if` or rewrite regex, the default value for a map, a closed connection for a
 * server_name regex, each with a `pcre2_match() failed: -47 on ... using ...` line.
 */
function conf(dir: string, port: number, pid: string): string {
  return `${httpHead(dir, port, pid)}
    map $uri $m { default dflt; "~^/m/(a+)+$" hit; }
    server {
        listen 127.0.0.1:${port} default_server;
        server_name localhost;
        location ~ ^/(a+)+$ { return 200 "loc\\n"; }
        location /m/ { return 200 "map=$m\\n"; }
        location /i/ { if ($uri ~ ^/i/(a+)+$) { return 201 "if\\n"; } return 200 "if-no\\n"; }
        location /r/ { rewrite ^/r/(a|aa)+$ /ok last; return 200 "rw-no\\n"; }
        location = /ok { return 200 "rewritten\\n"; }
        location / { return 404 "none\\n"; }
    }
    server {
        listen 127.0.0.1:${port};
        server_name ~^(a+)+$;
        location / { return 200 "by regex name\\n"; }
    }
}
`
}

const a = (n: number) => 'a'.repeat(n)
const BAD = `${a(40)}b`

/** Path (or `host:NAME`) -> what a client sees: `500`, `200 map=dflt`, or `closed`. */
async function ask(addr: HostPort, what: string): Promise<string> {
  if (what.startsWith('host:')) {
    const raw = await rawRequest(addr, `GET / HTTP/1.1\r\nHost: ${what.slice(5)}\r\nConnection: close\r\n\r\n`)
    if (raw.length === 0) return 'closed'
  }
  const r = what.startsWith('host:') ? await get(addr, '/', { Host: what.slice(5) }) : await get(addr, what)
  return r.status === 500 ? '500' : `${r.status} ${r.body.toString().trim()}`
}

const CASES = ['/aaaa', `/${BAD}`, `/m/${a(5)}`, `/m/${BAD}`, `/i/${a(5)}`, `/i/${BAD}`, `/r/${a(5)}`, `/r/${BAD}`, `host:${a(5)}`, `host:${BAD}`]


async function startOurs(dir: string): Promise<{ addr: HostPort; lines: string[]; close(): Promise<void> }> {
  const port = await freePort()
  const file = join(dir, 'ours.conf')
  await writeFile(file, conf(dir, port, join(dir, 'ours.pid')))
  const { logger, lines } = captureLogger()
  const server = createStaticServer(await loadNginxConf({ file, prefix: dir }), logger)
  const [addr] = await server.listen()
  return { addr: addr as HostPort, lines, close: () => server.close({ drainTimeoutMs: 0 }) }
}

describe('static-server: bounded nginx.conf regexes', () => {
  test('location, map, if, rewrite and server_name regexes answer as nginx does past the limit, with the alert line', { timeout: 30_000 }, async (t) => {
    const dir = await makeFixtures()
    t.after(() => rm(dir, { recursive: true, force: true }))
    const ours = await startOurs(dir)
    t.after(() => ours.close())
    const seen: string[] = []
    for (const c of CASES) seen.push(`${c.length > 20 ? `${c.slice(0, 8)}..` : c} ${await ask(ours.addr, c)}`)
    assert.deepEqual(seen, [
      '/aaaa 200 loc',
      '/aaaaaaa.. 500',
      '/m/aaaaa 200 map=hit',
      '/m/aaaaa.. 200 map=dflt',
      '/i/aaaaa 201 if',
      '/i/aaaaa.. 500',
      '/r/aaaaa 200 rewritten',
      '/r/aaaaa.. 500',
      'host:aaaaa 200 by regex name',
      'host:aaa.. closed',
    ])
    const alerts = ours.lines.filter((l) => l.includes('pcre2_match() failed: -47'))
    assert.equal(alerts.length, 5, ours.lines.join('\n'))
    assert.ok(alerts[0]?.startsWith(`error pcre2_match() failed: -47 on "/${BAD}" using "^/(a+)+$", client: 127.0.0.1`), alerts[0])
    assert.ok(alerts.some((l) => l.includes(`on "${BAD}" using "^(a+)+$" while reading client request headers`)))
  })

  test('a pathological request does not hold up a concurrent one', { timeout: 30_000 }, async (t) => {
    const dir = await makeFixtures()
    t.after(() => rm(dir, { recursive: true, force: true }))
    const ours = await startOurs(dir)
    t.after(() => ours.close())
    // Five pathological requests on five connections, a plain one started right after them:
    // all complete (an unbounded match would hold the event loop for ever). A 500 ends its
    // connection, as nginx's special response does.
    const slow = Promise.all(Array.from({ length: 5 }, () => get(ours.addr, `/i/${BAD}`)))
    const fast = get(ours.addr, '/i/aaa')
    const [bad, good] = await Promise.all([slow, fast])
    assert.deepEqual(
      bad.map((r) => r.status),
      [500, 500, 500, 500, 500],
    )
    assert.equal(good.status, 201)
  })

  test('differential: nginx answers the same on the same file', { timeout: 60_000 }, async (t) => {
    if (!hasNginx) {
      if (process.env.CI) assert.fail('nginx is not installed (apt-get install nginx-light): the differential cannot run')
      return t.skip('nginx is not installed at /usr/sbin/nginx: differential NOT run')
    }
    const dir = await makeFixtures()
    t.after(() => rm(dir, { recursive: true, force: true }))
    await mkdir(join(dir, 'tmp'), { recursive: true })
    const port = await freePort()
    await writeFile(join(dir, 'nginx.conf'), conf(dir, port, join(dir, 'nginx.pid')))
    const nginx = await startNginx(dir, join(dir, 'nginx.conf'), port)
    t.after(() => {
      nginx.kill('SIGTERM')
    })
    const ours = await startOurs(dir)
    t.after(() => ours.close())
    const theirs: string[] = []
    const mine: string[] = []
    for (const c of CASES) {
      theirs.push(`${c} ${await ask({ host: '127.0.0.1', port }, c)}`)
      mine.push(`${c} ${await ask(ours.addr, c)}`)
    }
    assert.deepEqual(mine, theirs)
    const log = await readFile(join(dir, `error-${port}.log`), 'utf8')
    assert.equal(log.match(/\[alert\] .*pcre2_match\(\) failed: -47 on /g)?.length, 5, log)
  })

  test("worker processes run with V8's linear-time fallback too: a polynomial location regex on a long URI is answered", { timeout: 60_000 }, async (t) => {
    const dir = await makeFixtures()
    t.after(() => rm(dir, { recursive: true, force: true }))
    const port = await freePort()
    const file = join(dir, 'workers.conf')
    await writeFile(
      file,
      `worker_processes 2;\npid ${dir}/w.pid;\nerror_log stderr info;\nevents {}\nhttp { access_log off; server { listen 127.0.0.1:${port};
        location ~ ^/p/.*.*.*.*x$ { return 200 "poly\\n"; } location / { return 404 "none\\n"; } } }\n`,
    )
    // Its own process group, so that the workers go with the master whatever state they are in.
    const child = spawn(process.execPath, [join(REPO, 'packages/static-server/dist/src/cli.js'), '-p', dir, '-c', file], { stdio: 'ignore', detached: true })
    t.after(() => {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
    })
    const addr = { host: '127.0.0.1', port }
    // Bounded wait for the workers to listen.
    for (let i = 0; i < 200; i++) {
      if (await get(addr, '/p/ax').then((r) => r.status === 200, () => false)) break
      await new Promise((r) => setTimeout(r, 50))
    }
    // 3000^4 backtracking steps without the fallback: no answer ever, from either worker.
    const long = `/p/${a(3000)}`
    const answers = await Promise.all([get(addr, long), get(addr, long), get(addr, '/p/ax')])
    assert.deepEqual(
      answers.map((r) => `${r.status} ${r.body.toString().trim()}`),
      ['404 none', '404 none', '200 poly'],
    )
  })
})
