import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { mkdir, writeFile } from 'node:fs/promises'
import http from 'node:http'
import { join } from 'node:path'
import { test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { loadNginxConf } from '../src/config/nginx-conf.js'
import { get, listenLoopback, makeFixtures, NGINX, nginxMissing, type RawResponse, startBoth } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'

/**
 * limit_req and limit_conn against nginx on one file. Rates are per minute (or 30 a minute
 * where a delay is the point), so what passes, what waits and what is refused does not hang
 * on how fast the machine is; each case keys its own state with `?k=`.
 */
function config(dir: string, port: number, pid: string, backend: number): string {
  return `${httpHead(dir, port, pid)}
    limit_req_zone $arg_k zone=k:1m rate=1r/m;
    limit_req_zone $arg_k zone=k2:1m rate=1r/m;
    limit_req_zone $arg_k zone=slow:1m rate=30r/m;
    limit_req_zone $binary_remote_addr zone=ip:1m rate=1r/m;
    limit_conn_zone $arg_k zone=c:1m;
    limit_conn_zone $arg_k zone=c2:1m;
    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        root ${dir}/root;
        add_header X-Req "$limit_req_status" always;
        add_header X-Conn "$limit_conn_status" always;
        location /none/ { alias ${dir}/root/; limit_req zone=k; }
        location /burst/ { alias ${dir}/root/; limit_req zone=k burst=2 nodelay; }
        location /status/ { alias ${dir}/root/; limit_req zone=k burst=1 nodelay; limit_req_status 429; }
        location /two/ { alias ${dir}/root/; limit_req zone=k burst=3 nodelay; limit_req zone=k2 burst=1 nodelay; }
        location /delay/ { alias ${dir}/root/; limit_req zone=slow burst=5 delay=2; }
        location /dry/ { alias ${dir}/root/; limit_req zone=k; limit_req_dry_run on; }
        location /ip/ { alias ${dir}/root/; limit_req zone=ip burst=1 nodelay; }
        location /page/ { alias ${dir}/root/; limit_req zone=k; error_page 503 /err/here.txt; }
        location /err/ { alias ${dir}/root/err/; }
        location /inherit/ {
            alias ${dir}/root/;
            limit_req zone=k burst=1 nodelay;
            location /inherit/sub/ { alias ${dir}/root/; }
            location /inherit/own/ { alias ${dir}/root/; limit_req zone=k2; }
        }
        location /conn/ { limit_conn c 1; proxy_pass http://127.0.0.1:${backend}/; }
        location /conn-dry/ { limit_conn c2 1; limit_conn_dry_run on; limit_conn_status 429; limit_conn_log_level warn; proxy_pass http://127.0.0.1:${backend}/; }
        location /conn-file/ { alias ${dir}/root/; limit_conn c 1; }
    }
}
`
}

/** A backend that holds each /hold/ request until released, and says when one arrived. */
async function startHoldingBackend() {
  const arrived = new EventEmitter()
  const held: http.ServerResponse[] = []
  const server = http.createServer((req, res) => {
    held.push(res)
    arrived.emit('request', req.url)
  })
  const { port, close } = await listenLoopback(server)
  return {
    port,
    arrived,
    release() {
      for (const res of held.splice(0)) res.end('released\n')
    },
    close,
  }
}

const seen = (r: RawResponse) => `${r.status} req=${r.headers.get('x-req') ?? ''} conn=${r.headers.get('x-conn') ?? ''} ${r.status === 200 ? r.body.toString() : ''}`

/** Request sequences, each on keys of its own, sent one after the other. */
const SEQUENCES: { name: string; paths: string[]; from?: string }[] = [
  { name: 'no burst: one passes, the next is refused', paths: ['/none/a.txt?k=n1', '/none/a.txt?k=n1', '/none/a.txt?k=n2'] },
  { name: 'an empty key is not limited', paths: ['/none/a.txt', '/none/a.txt', '/none/a.txt'] },
  { name: 'burst=2 nodelay', paths: Array(5).fill('/burst/a.txt?k=b1') },
  { name: 'limit_req_status 429', paths: Array(4).fill('/status/a.txt?k=s1') },
  { name: 'two zones: the tighter refuses', paths: Array(4).fill('/two/a.txt?k=t1') },
  { name: 'dry run passes what it would refuse', paths: Array(3).fill('/dry/a.txt?k=d1') },
  { name: 'error_page for the refusal', paths: Array(3).fill('/page/a.txt?k=p1') },
  { name: 'a nested location inherits, one of its own replaces', paths: ['/inherit/a.txt?k=i1', '/inherit/sub/a.txt?k=i1', '/inherit/sub/a.txt?k=i1', '/inherit/own/a.txt?k=i1', '/inherit/own/a.txt?k=i1'] },
  { name: 'keyed by $binary_remote_addr', paths: ['/ip/a.txt', '/ip/a.txt', '/ip/a.txt'], from: '127.0.0.9' },
  { name: 'a second client address has its own state', paths: ['/ip/a.txt', '/ip/a.txt'], from: '127.0.0.10' },
  { name: 'limit_conn counts requests in flight only', paths: ['/conn-file/a.txt?k=f1', '/conn-file/a.txt?k=f1'] },
]

function fetch(addr: HostPort, path: string, from?: string): Promise<RawResponse> {
  return get(addr, path, {}, 'GET', from)
}

test('differential: limit_req and limit_conn pass, delay and refuse what nginx does', { skip: nginxMissing }, async (t) => {
  const dir = await makeFixtures()
  const backend = await startHoldingBackend()
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, pid, backend.port))
  t.after(async () => {
    nginx.kill('SIGKILL')
    await ours.close({ drainTimeoutMs: 0 })
    backend.release()
    await backend.close()
  })
  const diffs: string[] = []
  let refused = 0
  for (const s of SEQUENCES) {
    const theirs: string[] = []
    const mine: string[] = []
    for (const p of s.paths) theirs.push(seen(await fetch(theirAddr, p, s.from)))
    for (const p of s.paths) mine.push(seen(await fetch(ourAddr, p, s.from)))
    refused += theirs.filter((x) => !x.startsWith('200')).length
    if (JSON.stringify(theirs) !== JSON.stringify(mine)) diffs.push(`${s.name}\n  nginx ${theirs.join(' | ')}\n  ours  ${mine.join(' | ')}`)
  }

  // delay=2 at 30 a minute: three pass at once, the fourth waits about two seconds, all answer 200.
  const delays: string[][] = []
  for (const addr of [theirAddr, ourAddr]) {
    const out: string[] = []
    for (let i = 0; i < 4; i++) out.push(seen(await fetch(addr, '/delay/a.txt?k=w1')))
    delays.push(out)
  }
  assert.ok(delays[0]?.some((x) => x.includes('req=DELAYED')), `nginx delayed none: ${delays[0]?.join(' | ')}`)
  if (JSON.stringify(delays[0]) !== JSON.stringify(delays[1])) diffs.push(`delay=2\n  nginx ${delays[0]?.join(' | ')}\n  ours  ${delays[1]?.join(' | ')}`)

  // limit_conn: a second request while the first is held by the backend.
  for (const prefix of ['/conn/', '/conn-dry/']) {
    const results: string[][] = []
    for (const addr of [theirAddr, ourAddr]) {
      const first = fetch(addr, `${prefix}hold?k=${prefix.length}`)
      await once(backend.arrived, 'request')
      const second = await fetch(addr, `${prefix}hold2?k=${prefix.length}`)
      if (second.status === 200) await once(backend.arrived, 'request')
      backend.release()
      const third = fetch(addr, `${prefix}after?k=${prefix.length}`)
      await once(backend.arrived, 'request')
      backend.release()
      results.push([seen(await first), seen(second), seen(await third)])
    }
    const [theirs = [], mine = []] = results
    if (JSON.stringify(theirs) !== JSON.stringify(mine)) diffs.push(`${prefix}\n  nginx ${theirs.join(' | ')}\n  ours  ${mine.join(' | ')}`)
  }
  assert.deepEqual(diffs, [])
  assert.ok(refused >= 8, `${refused} refusals by nginx: the corpus exercises the limits`)
})

test('differential: limit directives nginx refuses are refused in its words', { skip: nginxMissing }, async () => {
  const dir = await makeFixtures()
  await mkdir(join(dir, 'tmp'), { recursive: true })
  const zone = 'limit_req_zone $binary_remote_addr zone=one:1m rate=1r/s;'
  const cases = [
    'limit_req_zone $binary_remote_addr zone=one:16k rate=1r/s;',
    'limit_req_zone $binary_remote_addr zone=one rate=1r/s;',
    'limit_req_zone $binary_remote_addr zone=one:1m rate=xr/s;',
    'limit_req_zone $binary_remote_addr zone=one:1m rate=1r/h;',
    'limit_req_zone $binary_remote_addr zone=one:1m rate=0r/s;',
    'limit_req_zone $binary_remote_addr zone=one:1m foo;',
    'limit_req_zone $binary_remote_addr rate=1r/s;',
    'limit_req_zone $nosuch zone=one:1m rate=1r/s;',
    `limit_req_zone $uri zone=one:1m rate=1r/s; ${zone}`,
    `${zone} limit_req_zone $binary_remote_addr zone=one:2m rate=1r/s;`,
    `${zone} limit_conn_zone $binary_remote_addr zone=one:1m;`,
    `${zone} limit_req zone=one burst=0;`,
    `${zone} limit_req zone=one delay=x;`,
    `${zone} limit_req zone=one; limit_req zone=one;`,
    `${zone} limit_req burst=3;`,
    'limit_req zone=two;',
    'limit_conn c 1;',
    'limit_req_status 399;',
    'limit_req_log_level debug;',
    'limit_conn_zone $binary_remote_addr zone=c:1m; limit_conn c 0;',
    'limit_conn_zone $binary_remote_addr zone=c:1m; limit_conn c 70000;',
    'limit_conn_zone $binary_remote_addr zone=c:1m; limit_conn c 1; limit_conn c 2;',
    'limit_conn_zone $binary_remote_addr zone=c:1m; limit_req zone=c;',
    'limit_req_dry_run maybe;',
  ]
  for (const line of cases) {
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
    await assert.rejects(loadNginxConf({ file, prefix: dir }), (err: Error) => {
      assert.ok(err.message.includes(m[1] as string), `${line}: nginx "${m[1]}", ours "${err.message}"`)
      return true
    })
  }
  // Ours only: zones one worker counts in alone would be N times looser than the file says.
  const file = join(dir, 'workers.conf')
  await writeFile(file, `${httpHead(dir, 1, join(dir, 'w.pid')).replace('worker_processes 1;', 'worker_processes 2;')}\n    ${zone} limit_req zone=one;\n}\n`)
  await assert.rejects(loadNginxConf({ file, prefix: dir }), /"limit_req" with "worker_processes" above 1 is not supported/)
})
