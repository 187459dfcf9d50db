import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { get, makeFixtures, nginxMissing, startBoth } from './helpers.js'
import { assertRefusedAsNginx, httpHead } from './nginx-test-conf.js'

/**
 * `expires` with variables (nginx 1.22 reads such a value per answer with ngx_http_parse_expires):
 * from a map and straight from `$arg_e`, with and without `modified`, on `return` answers, on
 * files (the small-file fast path included) and on a 404. Values nginx cannot read leave the
 * answer without Expires and Cache-Control, and add_header still runs.
 */
function config(dir: string, port: number, pid: string): string {
  return `${httpHead(dir, port, pid)}
    map $arg_e $exp { default $arg_e; week 7d; }
    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        root ${dir}/root;
        location /a/ { expires $exp; add_header X-A 1; return 200 "ok\\n"; }
        location /m/ { alias ${dir}/root/; expires modified $arg_e; }
        location /f/ { alias ${dir}/root/; expires $arg_e; }
        location /mixed/ { expires "1$arg_e"; return 200 "ok\\n"; }
    }
}
`
}

/** The fields expires writes, with what depends on the clock made relative to the answer's Date. */
async function seen(addr: HostPort, path: string): Promise<string> {
  const r = await get(addr, path)
  const date = Date.parse(r.headers.get('date') ?? '')
  const exp = r.headers.get('expires')
  const cc = r.headers.get('cache-control')
  let out = `${r.status} x-a=${r.headers.get('x-a') ?? '-'}`
  if (exp === undefined) return `${out} no Expires, cc=${cc ?? '-'}`
  // Fixed times (epoch, max, a time of day, the fixture's 2024 mtime plus a little) are compared as they are;
  // the rest relative to the answer's Date, which was read with the same clock reading.
  const at = Date.parse(exp)
  const fixed = at < date - 365 * 86_400_000 || exp === 'Thu, 31 Dec 2037 23:55:55 GMT' || path.includes('=@')
  out += fixed ? ` expires=${exp}` : ` expires=date+${(at - date) / 1000}s`
  const age = /^max-age=(\d+)$/.exec(cc ?? '')
  // max-age and Expires come from one clock reading: only their agreement is compared.
  return `${out} cc=${age ? `max-age=expires-date:${Number(age[1]) === (at - date) / 1000}` : cc}`
}

test('differential: expires with variables as nginx', { skip: nginxMissing }, async (t) => {
  const dir = await makeFixtures()
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, pid))
  t.after(async () => {
    nginx.kill('SIGKILL')
    await ours.close()
  })
  const values = ['1h', '-1h', '0', 'epoch', 'max', 'off', '@10h', '@23h59m', '@25h', 'bogus', '', '1h30m', '+5m', '500ms', '1y', 'week', 'modified', '-0']
  const paths = [
    ...values.map((v) => `/a/?e=${v}`),
    ...['1h', '-1h', '10y', 'epoch', 'max', 'off', '@10h', 'bogus', '', '+2d'].map((v) => `/m/a.txt?e=${v}`),
    ...['1h', 'epoch', 'bogus', 'off'].flatMap((v) => [`/f/a.txt?e=${v}`, `/f/missing.txt?e=${v}`]),
    '/mixed/?e=h',
    '/mixed/?e=x',
  ]
  const diffs: string[] = []
  for (const path of paths) {
    const [theirs, mine] = [await seen(theirAddr, path), await seen(ourAddr, path)]
    if (theirs !== mine) diffs.push(`${path}\n  nginx: ${theirs}\n  ours:  ${mine}`)
  }
  assert.deepEqual(diffs, [])
})

test('expires values nginx refuses at load are refused in its words', { skip: nginxMissing }, async () => {
  const dir = await makeFixtures()
  for (const line of ['expires $arg_a $arg_b;', 'expires 500ms;', 'expires "";', 'expires modified @1h;', 'expires @25h;', 'expires modified epoch;', 'expires 1h; expires 2h;']) {
    await assertRefusedAsNginx(dir, line)
  }
})
