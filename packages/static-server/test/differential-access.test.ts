import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { get, makeFixtures, nginxMissing, startBoth } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'

/**
 * ngx_http_access_module under both programs, same file, same clients (IPv4 and IPv6
 * loopback): allow/deny with addresses, CIDR blocks, `all` and `unix:`, the first match
 * deciding, lists inherited whole or replaced whole, the access phase after the rewrite
 * phase and before try_files, realip's address, `satisfy any`, and error_page for the 403.
 */
function config(dir: string, port: number, pid: string): string {
  return `${httpHead(dir, port, pid)}
    deny 10.9.9.9;
    server {
        listen 127.0.0.1:${port};
        listen [::1]:${port};
        server_name localhost;
        root ${dir}/root;
        error_page 403 /e403.html;
        location = /e403.html { internal; }
        location ~ /\\. { deny all; }
        location /v4/ { allow 127.0.0.1; deny all; alias ${dir}/root/; }
        location /lo/ { deny 127.0.0.0/8; allow all; alias ${dir}/root/; }
        location /first/ { allow 127.0.0.2; deny 127.0.0.0/24; allow all; alias ${dir}/root/; }
        location /first-allow/ { allow 127.0.0.0/24; deny 127.0.0.1; alias ${dir}/root/; }
        location /host-bits/ { deny 127.0.0.77/8; alias ${dir}/root/; }
        location /v6/ { deny ::1; allow all; alias ${dir}/root/; }
        location /v6net/ { deny ::/64; alias ${dir}/root/; }
        location /v6all/ { allow 127.0.0.1; deny all; alias ${dir}/root/; }
        location /mapped/ { deny ::ffff:127.0.0.1; alias ${dir}/root/; }
        location /unix/ { deny unix:; alias ${dir}/root/; }
        location /nest/ {
            deny all;
            alias ${dir}/root/;
            location /nest/in/ { alias ${dir}/root/; }
            location /nest/open/ { allow all; alias ${dir}/root/; }
        }
        location /ret/ { deny all; return 200 "rewrite phase first\\n"; }
        location /rw/ { rewrite ^/rw/(.*)$ /lo/$1 last; }
        location /tf/ { deny all; try_files $uri =404; }
        location /any/ { satisfy any; deny all; alias ${dir}/root/; }
        location /any-allow/ { satisfy any; allow all; alias ${dir}/root/; }
        location /realip/ {
            set_real_ip_from 127.0.0.1;
            set_real_ip_from ::1;
            real_ip_header X-Real-IP;
            deny 192.0.2.0/24;
            alias ${dir}/root/;
        }
        location /inherited/ { alias ${dir}/root/; }
    }
}
`
}

const CASES: [path: string, headers?: Record<string, string>][] = [
  ['/a.txt'],
  ['/.hidden'],
  ['/sub/.hidden'],
  ['/v4/a.txt'],
  ['/lo/a.txt'],
  ['/first/a.txt'],
  ['/first-allow/a.txt'],
  ['/host-bits/a.txt'],
  ['/v6/a.txt'],
  ['/v6net/a.txt'],
  ['/v6all/a.txt'],
  ['/mapped/a.txt'],
  ['/unix/a.txt'],
  ['/nest/a.txt'],
  ['/nest/in/a.txt'],
  ['/nest/open/a.txt'],
  ['/ret/x'],
  ['/rw/a.txt'],
  ['/tf/a.txt'],
  ['/tf/missing'],
  ['/any/a.txt'],
  ['/any-allow/a.txt'],
  ['/realip/a.txt', { 'X-Real-IP': '192.0.2.7' }],
  ['/realip/a.txt', { 'X-Real-IP': '198.51.100.7' }],
  ['/inherited/a.txt'],
  ['/e403.html'],
]

test('differential: allow, deny and satisfy answer as in nginx, over IPv4 and IPv6', { skip: nginxMissing }, async (t) => {
  const dir = await makeFixtures()
  await writeFile(join(dir, 'root/e403.html'), 'custom forbidden page\n')
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, pid))
  t.after(async () => {
    nginx.kill('SIGKILL')
    await ours.close({ drainTimeoutMs: 0 })
  })
  const diffs: string[] = []
  let forbidden = 0
  for (const host of ['127.0.0.1', '::1']) {
    for (const [path, headers] of CASES) {
      const a = await get({ host, port: theirAddr.port } as HostPort, path, headers)
      const b = await get({ host, port: ourAddr.port } as HostPort, path, headers)
      if (a.status === 403) forbidden++
      const label = `${host} ${path} ${JSON.stringify(headers ?? {})}`
      if (a.status !== b.status) diffs.push(`${label}: nginx ${a.status}, ours ${b.status}`)
      else if (a.status === 403 && !a.body.equals(b.body)) diffs.push(`${label}: 403 bodies differ`)
      else if (a.status === 200 && !a.body.equals(b.body)) diffs.push(`${label}: bodies differ`)
    }
  }
  assert.deepEqual(diffs, [])
  // The corpus must exercise both answers, or it proves nothing.
  assert.ok(forbidden >= 15, `${forbidden} forbidden answers`)
})
