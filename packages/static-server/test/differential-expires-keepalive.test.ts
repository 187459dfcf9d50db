import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { get, makeFixtures, nginxMissing, rawRequest, startBoth } from './helpers.js'
import { assertRefusedAsNginx, httpHead } from './nginx-test-conf.js'

/**
 * `expires @time` (the next time that time of day comes in the server's zone) and
 * keepalive_disable (MSIE 4 to 6 after a POST, old Safari) under both programs on one file.
 */
const MSIE6 = 'Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)'
const SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15'
const CHROME = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36'

function config(dir: string, port: number, pid: string, daily: string): string {
  return `${httpHead(dir, port, pid)}
    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        root ${dir}/root;
        location /daily/ { alias ${dir}/root/; expires @${daily}; }
        location /midnight/ { alias ${dir}/root/; expires @0s; }
        location /plus/ { alias ${dir}/root/; expires +0s; }
        location /ka/ { return 200 "ok\\n"; }
        location /none/ { keepalive_disable none; return 200 "ok\\n"; }
        location /safari/ { keepalive_disable safari; return 200 "ok\\n"; }
        location /both/ { keepalive_disable msie6 safari; return 200 "ok\\n"; }
    }
}
`
}

/** The tested request kept alive, then a closing one: two answers mean the first kept the connection. */
async function keptAlive(addr: HostPort, method: string, path: string, ua: string): Promise<string> {
  const first = `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: ${ua}\r\n${method === 'POST' ? 'Content-Length: 0\r\n' : ''}\r\n`
  const raw = (await rawRequest(addr, `${first}GET /ka/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)).toString('latin1')
  const answers = raw.match(/HTTP\/1\.1 \d{3} /g)?.length ?? 0
  // Our keep-alive answers leave out nginx's `Connection: keep-alive` (DIFFERENCES.md): only a close is compared.
  const closes = /\r\nConnection: close\r\n/i.test(raw.slice(0, raw.indexOf('\r\n\r\n') + 2))
  return `${answers} answer(s)${closes ? ', the first closing' : ''}`
}

test('differential: expires @time and keepalive_disable as nginx', { skip: nginxMissing }, async (t) => {
  const dir = await makeFixtures()
  await mkdir(join(dir, 'tmp'), { recursive: true })
  // A zone with a half-hour offset and no summer time, so the local day is not GMT's.
  const tz = process.env.TZ
  process.env.TZ = 'Asia/Kolkata'
  t.after(() => {
    if (tz === undefined) delete process.env.TZ
    else process.env.TZ = tz
  })
  // Six hours from now in that zone: far from the moment the answers are made.
  const soon = new Date(Date.now() + 6 * 3600_000)
  const daily = `${soon.getHours()}h${soon.getMinutes()}m`
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, pid, daily))
  t.after(async () => {
    nginx.kill('SIGKILL')
    await ours.close({ drainTimeoutMs: 0 })
  })
  const diffs: string[] = []
  for (const path of ['/daily/a.txt', '/midnight/a.txt', '/plus/a.txt']) {
    const [theirs, mine] = await Promise.all([get(theirAddr, path), get(ourAddr, path)])
    // The Expires time is the same for both; max-age counts from each one's own second.
    const view = (r: typeof theirs) => `${r.status} Expires=${r.headers.get('expires')} ${r.headers.get('cache-control')?.replace(/\d+/, 'N')}`
    if (view(theirs) !== view(mine)) diffs.push(`${path}\n  nginx ${view(theirs)}\n  ours  ${view(mine)}`)
  }
  const cases: [string, string, string][] = [
    ['POST', '/ka/', MSIE6],
    ['GET', '/ka/', MSIE6],
    ['POST', '/ka/', 'Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)'],
    ['POST', '/ka/', 'Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)'],
    ['POST', '/ka/', 'Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)'],
    ['POST', '/ka/', `${MSIE6} Opera 8.0`],
    ['POST', '/ka/', 'MSIE 6.'],
    ['GET', '/ka/', SAFARI],
    ['POST', '/none/', MSIE6],
    ['GET', '/safari/', SAFARI],
    ['GET', '/safari/', CHROME],
    ['GET', '/safari/', 'Mozilla/5.0 (Windows NT 10.0) AppleWebKit/605.1.15 Safari/605.1.15'],
    ['POST', '/safari/', MSIE6],
    ['POST', '/both/', MSIE6],
    ['GET', '/both/', SAFARI],
  ]
  let closed = 0
  for (const [method, path, ua] of cases) {
    const theirs = await keptAlive(theirAddr, method, path, ua)
    const mine = await keptAlive(ourAddr, method, path, ua)
    if (theirs.startsWith('1 ')) closed++
    if (theirs !== mine) diffs.push(`${method} ${path} ${ua}\n  nginx ${theirs}\n  ours  ${mine}`)
  }
  assert.deepEqual(diffs, [])
  assert.ok(closed >= 4, `nginx closed ${closed} connections: the corpus reaches the rule`)
})

test('differential: expires, keepalive_disable and pool size values nginx refuses are refused in its words', { skip: nginxMissing }, async () => {
  const dir = await makeFixtures()
  await mkdir(join(dir, 'tmp'), { recursive: true })
  for (const line of ['expires @25h;', 'expires modified @1h;', 'expires @x;', 'expires @-1h;', 'expires foo 1h;', 'expires modified;', 'keepalive_disable opera;', 'connection_pool_size 100;', 'connection_pool_size 1000;', 'request_pool_size 8;', 'ignore_invalid_headers maybe;']) {
    await assertRefusedAsNginx(dir, line)
  }
})
