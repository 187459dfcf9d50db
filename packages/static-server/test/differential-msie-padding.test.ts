import assert from 'node:assert/strict'
import { test } from 'node:test'
import { get, makeFixtures, nginxMissing, startBoth } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'

/** msie_padding (on by default): which user agents get a padded built-in error page, under both programs. */
function config(dir: string, port: number, pid: string): string {
  return `${httpHead(dir, port, pid)}
    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        root ${dir}/root;
        location /off/ { msie_padding off; }
    }
}
`
}

const AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  'Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)',
  'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0',
  'Opera/9.80 (Windows NT 6.1) Presto/2.12 Version/12.16 MSIE 6.0',
  'Chrome/1 Gecko/2',
  'ends with MSIE ',
  'curl/8.0',
]

test('differential: msie_padding pads built-in error pages for MSIE and Chrome, as in nginx', { skip: nginxMissing }, async (t) => {
  const dir = await makeFixtures()
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, pid))
  t.after(async () => {
    nginx.kill('SIGKILL')
    await ours.close({ drainTimeoutMs: 0 })
  })
  const diffs: string[] = []
  let padded = 0
  for (const ua of AGENTS) {
    for (const path of ['/missing', '/off/missing', '/sub']) {
      const a = await get(theirAddr, path, { 'User-Agent': ua })
      const b = await get(ourAddr, path, { 'User-Agent': ua })
      const pa = a.body.includes('a padding to disable MSIE')
      const pb = b.body.includes('a padding to disable MSIE')
      if (pa) padded++
      if (a.status !== b.status || pa !== pb) diffs.push(`${path} ${ua}: nginx ${a.status} padded ${pa}, ours ${b.status} padded ${pb}`)
    }
  }
  assert.deepEqual(diffs, [])
  assert.ok(padded >= 2, `${padded} padded answers`)
})
