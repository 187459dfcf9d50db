import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { loadNginxConf } from '../src/config/nginx-conf.js'
import { NGINX } from './helpers.js'

/**
 * The top of every differential nginx.conf: one worker, the pid and error log in the test's
 * directory, and the temp paths real nginx insists on creating kept there too (it would
 * otherwise try /var/lib/nginx). The caller continues inside `http {` and closes it.
 */
export function httpHead(dir: string, port: number, pid: string): string {
  return `
worker_processes 1;
pid ${pid};
error_log ${dir}/error-${port}.log warn;
events { worker_connections 64; }
http {
    include mime.types;
    default_type application/octet-stream;
    access_log off;
    server_tokens off;
    client_body_temp_path ${dir}/tmp/client;
    proxy_temp_path ${dir}/tmp/proxy;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;`
}

/**
 * `line` inside `http {` is refused by `nginx -t` and by our loader, ours in nginx's words
 * (the message without its `in FILE:LINE`, which ours words the same way).
 */
export async function assertRefusedAsNginx(dir: string, line: string): Promise<void> {
  const file = join(dir, 'refused.conf')
  await writeFile(file, `${httpHead(dir, 1, join(dir, 'r.pid'))}\n    ${line}\n}\n`)
  let theirs = ''
  try {
    execFileSync(NGINX, ['-t', '-p', dir, '-c', file], { stdio: 'pipe' })
  } catch (err) {
    theirs = String((err as { stderr: Buffer }).stderr)
  }
  const m = /\[emerg\] \d+#\d+: (.*?)(?: in \S+:\d+)?\n/.exec(theirs)
  assert.ok(m, `nginx accepted ${line}: ${theirs}`)
  await assert.rejects(
    loadNginxConf({ file, prefix: dir }),
    (err: Error) => {
      assert.ok(err.message.includes(m[1] as string), `${line}: nginx "${m[1]}", ours "${err.message}"`)
      return true
    },
    line,
  )
}
