import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import type { HostPort } from '@edgestack/common'
import { listenLoopback, makeFixtures, nginxMissing, parseResponse, type RawResponse, rawRequest, startBoth } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'

/**
 * The gzip filter against nginx on one file: which answers are compressed (types, lengths,
 * statuses, Accept-Encoding forms, HTTP/1.0, Via with each gzip_proxied flag, gzip_disable),
 * what the head says then (Content-Encoding, Vary, weak ETag, no length, no Accept-Ranges),
 * and that the body inflates to nginx's bytes. Proxied answers come from a loopback backend
 * that writes the fields gzip_proxied reads.
 */
function config(dir: string, port: number, pid: string, backend: number): string {
  const plain = (name: string, extra: string) => `location /${name}/ { alias ${dir}/root/; ${extra} }`
  return `${httpHead(dir, port, pid)}
    gzip on;
    gzip_vary on;
    gzip_types text/plain text/css application/json;
    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        root ${dir}/root;
        add_header X-A b;
        location /p/ { proxy_pass http://127.0.0.1:${backend}/; }
        location /pa/ { proxy_pass http://127.0.0.1:${backend}/; gzip_proxied any; }
        location /pe/ { proxy_pass http://127.0.0.1:${backend}/; gzip_proxied expired no-cache no-store private auth; }
        location /pl/ { proxy_pass http://127.0.0.1:${backend}/; gzip_proxied no_last_modified no_etag; }
        ${plain('off', 'gzip off;')}
        ${plain('any', 'gzip_proxied any;')}
        ${plain('exp', 'gzip_proxied expired; expires -1;')}
        ${plain('noetag', 'gzip_proxied no_etag;')}
        ${plain('nolm', 'gzip_proxied no_last_modified; etag off;')}
        ${plain('star', 'gzip_types *;')}
        ${plain('v10', 'gzip_http_version 1.0;')}
        ${plain('dis', 'gzip_disable msie6 "^curl/7";')}
        ${plain('min', 'gzip_min_length 1000;')}
        ${plain('lvl', 'gzip_comp_level 9; gzip_window 1k; gzip_hash 1k; gzip_buffers 4 1k;')}
        ${plain('novary', 'gzip_vary off;')}
        ${plain('idx', 'autoindex on;')}
        ${plain('st', 'gzip_static on;')}
        location /in-if/ { alias ${dir}/root/; gzip off; if ($arg_z) { gzip on; } }
        location = /ret { default_type text/plain; return 200 "a text the return directive answers with, long enough to compress\\n"; }
        location = /ret404 { return 404; }
        location = /stat { stub_status; }
    }
}
`
}

/** Answers whose fields decide gzip_proxied and the filter's own tests. */
function backendAnswer(path: string): { status: number; headers: Record<string, string>; body: string; chunked?: boolean } {
  const body = `backend answer for ${path}\n`.repeat(12)
  const past = 'Thu, 01 Jan 1970 00:00:01 GMT'
  const future = 'Thu, 31 Dec 2037 23:55:55 GMT'
  const table: Record<string, { status?: number; headers: Record<string, string>; chunked?: boolean; body?: string }> = {
    '/html': { headers: { 'Content-Type': 'text/html' } },
    '/chunked-css': { headers: { 'Content-Type': 'text/css' }, chunked: true },
    '/ct-param': { headers: { 'Content-Type': 'text/html; foo=bar' } },
    '/ct-charset': { headers: { 'Content-Type': 'text/html; charset=utf-8' } },
    '/ct-upper': { headers: { 'Content-Type': 'Text/CSS' } },
    '/ct-none': { headers: {} },
    '/encoded': { headers: { 'Content-Type': 'text/html', 'Content-Encoding': 'br' } },
    '/encoded-empty': { headers: { 'Content-Type': 'text/html', 'Content-Encoding': '' } },
    '/small': { headers: { 'Content-Type': 'text/html' }, body: 'tiny' },
    '/etag': { headers: { 'Content-Type': 'text/html', ETag: '"abc"', 'Accept-Ranges': 'bytes' } },
    '/etag-weak': { headers: { 'Content-Type': 'text/html', ETag: 'W/"abc"' } },
    '/etag-bad': { headers: { 'Content-Type': 'text/html', ETag: 'abc' } },
    '/cc-private': { headers: { 'Content-Type': 'text/html', 'Cache-Control': 'private, max-age=5' } },
    '/cc-nocache': { headers: { 'Content-Type': 'text/html', 'Cache-Control': 'no-cache' } },
    '/cc-public': { headers: { 'Content-Type': 'text/html', 'Cache-Control': 'public' } },
    '/exp-past': { headers: { 'Content-Type': 'text/html', Expires: past } },
    '/exp-future': { headers: { 'Content-Type': 'text/html', Expires: future } },
    '/lm': { headers: { 'Content-Type': 'text/html', 'Last-Modified': past } },
    '/404': { status: 404, headers: { 'Content-Type': 'text/html' } },
    '/403': { status: 403, headers: { 'Content-Type': 'text/html' } },
    '/500': { status: 500, headers: { 'Content-Type': 'text/html' } },
    '/206': { status: 206, headers: { 'Content-Type': 'text/html', 'Content-Range': 'bytes 0-9/100' }, body: '0123456789' },
  }
  const a = table[path] ?? { status: 404, headers: { 'Content-Type': 'text/plain' } }
  return { status: a.status ?? 200, headers: a.headers, body: a.body ?? body, chunked: a.chunked }
}

async function startBackend(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const a = backendAnswer((req.url ?? '/').split('?')[0] as string)
    res.sendDate = false
    for (const [k, v] of Object.entries(a.headers)) res.setHeader(k, v)
    if (!a.chunked) res.setHeader('Content-Length', Buffer.byteLength(a.body))
    res.writeHead(a.status)
    res.end(req.method === 'HEAD' ? undefined : a.body)
  })
  return listenLoopback(server)
}

function ask(addr: HostPort, method: string, path: string, version: string, fields: Record<string, string>): Promise<RawResponse> {
  let head = `${method} ${path} HTTP/${version}\r\nHost: localhost\r\nConnection: close\r\n`
  for (const [k, v] of Object.entries(fields)) head += `${k}: ${v}\r\n`
  return rawRequest(addr, `${head}\r\n`).then(parseResponse)
}

/** What must agree: the status, every field but Date and Server, and the body once inflated. */
function view(r: RawResponse, method: string, ours: boolean, proxied: boolean): string {
  let body = r.body
  if (r.headers.get('content-encoding') === 'gzip' && method !== 'HEAD') {
    try {
      body = gunzipSync(r.body)
    } catch {
      return `${r.status} <body does not inflate>`
    }
  }
  // Built-in pages are signed with the server's own name (a documented difference).
  const signed = body.indexOf('<center>static-server</center>')
  if (ours && !proxied && method === 'HEAD' && r.status >= 400 && r.headers.get('content-type') === 'text/html' && r.headers.has('content-length')) {
    r.headers.set('content-length', String(Number(r.headers.get('content-length')) - 8))
  } else if (signed >= 0) {
    body = Buffer.concat([body.subarray(0, signed), Buffer.from('<center>nginx</center>'), body.subarray(signed + 30)])
    if (r.headers.has('content-length')) r.headers.set('content-length', String(Number(r.headers.get('content-length')) - 8))
  }
  // `expires -1` is counted from each server's own clock reading: only its presence is compared.
  if (r.headers.has('expires')) r.headers.set('expires', 'present')
  const fields = [...r.headers].filter(([k]) => k !== 'date' && k !== 'server').sort(([a], [b]) => a.localeCompare(b))
  return `${r.status} ${JSON.stringify(fields)} ${body.toString('latin1')}`
}

const FILES = ['a.txt', 'index.html', 'dir/x.css', 'data.json', 'big.bin', 'page.html', 'big.txt', 'twenty.txt', 'nineteen.txt', 'missing.txt', 'gz/app.js']
const PLAIN_LOCATIONS = ['', '/off', '/any', '/exp', '/noetag', '/nolm', '/star', '/v10', '/dis', '/min', '/lvl', '/novary', '/st']
const PROXIED = ['/html', '/chunked-css', '/ct-param', '/ct-charset', '/ct-upper', '/ct-none', '/encoded', '/encoded-empty', '/small', '/etag', '/etag-weak', '/etag-bad', '/cc-private', '/cc-nocache', '/cc-public', '/exp-past', '/exp-future', '/lm', '/404', '/403', '/500', '/206']

/** Accept-Encoding and other request forms the decision turns on. */
const ASKS: { method: string; version: string; fields: Record<string, string> }[] = [
  { method: 'GET', version: '1.1', fields: {} },
  { method: 'GET', version: '1.1', fields: { 'Accept-Encoding': 'gzip' } },
  { method: 'GET', version: '1.1', fields: { 'Accept-Encoding': 'deflate, gzip;q=0.5' } },
  { method: 'GET', version: '1.1', fields: { 'Accept-Encoding': 'gzip;q=0' } },
  { method: 'GET', version: '1.1', fields: { 'Accept-Encoding': 'x-gzip' } },
  { method: 'GET', version: '1.1', fields: { 'Accept-Encoding': 'GZIP' } },
  { method: 'HEAD', version: '1.1', fields: { 'Accept-Encoding': 'gzip' } },
  { method: 'GET', version: '1.0', fields: { 'Accept-Encoding': 'gzip' } },
  { method: 'GET', version: '1.1', fields: { 'Accept-Encoding': 'gzip', Via: '1.1 cdn' } },
  { method: 'GET', version: '1.1', fields: { 'Accept-Encoding': 'gzip', Via: '1.1 cdn', Authorization: 'Basic eDp5' } },
  { method: 'GET', version: '1.1', fields: { 'Accept-Encoding': 'gzip', Range: 'bytes=0-9' } },
  { method: 'GET', version: '1.1', fields: { 'Accept-Encoding': 'gzip', 'User-Agent': 'Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)' } },
  { method: 'GET', version: '1.1', fields: { 'Accept-Encoding': 'gzip', 'User-Agent': 'Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)' } },
  { method: 'GET', version: '1.1', fields: { 'Accept-Encoding': 'gzip', 'User-Agent': 'curl/7.88.1' } },
]

test('differential: the gzip filter compresses the answers nginx compresses, with the same fields and bytes', { skip: nginxMissing }, async (t) => {
  const dir = await makeFixtures()
  const root = join(dir, 'root')
  await writeFile(join(root, 'page.html'), '<p>a paragraph of html, repeated</p>\n'.repeat(60))
  // Larger than what the file cache keeps in memory: the streamed path.
  await writeFile(join(root, 'big.txt'), Array.from({ length: 9000 }, (_, i) => `line ${i} of a large text file\n`).join(''))
  await writeFile(join(root, 'twenty.txt'), 'x'.repeat(20))
  await writeFile(join(root, 'nineteen.txt'), 'x'.repeat(19))
  const backend = await startBackend()
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, pid, backend.port))
  t.after(async () => {
    nginx.kill('SIGKILL')
    await ours.close({ drainTimeoutMs: 0 })
    await backend.close()
  })
  const paths = [
    ...PLAIN_LOCATIONS.flatMap((l) => FILES.map((f) => `${l}/${f}`)),
    ...['/p', '/pa', '/pe', '/pl'].flatMap((l) => PROXIED.map((p) => `${l}${p}`)),
    '/in-if/a.txt',
    '/in-if/a.txt?z=1',
    '/ret',
    '/ret404',
    '/idx/',
    '/idx/dir/',
    '/stat',
  ]
  const diffs: string[] = []
  let compressed = 0
  for (const path of paths) {
    for (const a of ASKS) {
      // stub_status counts requests: its text differs from one server to the other by design.
      if (path === '/stat' && a.method === 'GET') continue
      const theirs = await ask(theirAddr, a.method, path, a.version, a.fields)
      const mine = await ask(ourAddr, a.method, path, a.version, a.fields)
      if (theirs.headers.get('content-encoding') === 'gzip' && !path.startsWith('/st/')) compressed++
      const proxied = /^\/p[ael]?\//.test(path)
      const [x, y] = [view(theirs, a.method, false, proxied), view(mine, a.method, true, proxied)]
      if (x !== y) diffs.push(`${a.method} ${path} HTTP/${a.version} ${JSON.stringify(a.fields)}\n  nginx ${x.slice(0, 400)}\n  ours  ${y.slice(0, 400)}`)
    }
  }
  assert.deepEqual(diffs, [])
  // The corpus exercises the filter, not only its refusals.
  assert.ok(compressed > 150, `${compressed} answers compressed by nginx`)

  // A file held in memory is compressed once per version: an edited file is compressed afresh.
  const gz = { 'Accept-Encoding': 'gzip' }
  for (const text of ['<p>first version of the page</p>\n', '<p>the second, longer version of the page</p>\n']) {
    await writeFile(join(root, 'page.html'), text.repeat(40))
    for (let i = 0; i < 2; i++) {
      const r = await ask(ourAddr, 'GET', '/page.html', '1.1', gz)
      assert.equal(r.headers.get('content-encoding'), 'gzip')
      assert.equal(gunzipSync(r.body).toString(), text.repeat(40))
    }
  }
})

test('differential: gzip directives nginx refuses are refused in its words', { skip: nginxMissing }, async () => {
  const { loadNginxConf } = await import('../src/config/nginx-conf.js')
  const dir = await makeFixtures()
  const cases = [
    'gzip maybe;',
    'gzip_comp_level 0;',
    'gzip_comp_level 10;',
    'gzip_window 3k;',
    'gzip_hash 100;',
    'gzip_proxied sometimes;',
    'gzip_http_version 2.0;',
    'gzip_min_length x;',
    'gzip_buffers 4 8x;',
    'gzip_disable "(";',
    'gzip_vary on; gzip_vary on;',
  ]
  const { execFileSync } = await import('node:child_process')
  for (const line of cases) {
    const file = join(dir, 'refused.conf')
    await writeFile(file, `${httpHead(dir, 1, join(dir, 'r.pid'))}\n    ${line}\n}\n`)
    let theirs = ''
    try {
      execFileSync('/usr/sbin/nginx', ['-t', '-p', dir, '-c', file], { stdio: 'pipe' })
    } catch (err) {
      theirs = String((err as { stderr: Buffer }).stderr)
    }
    const m = /\[emerg\] \d+#\d+: (.*) in \S+:\d+/.exec(theirs)
    assert.ok(m, `nginx accepted ${line}: ${theirs}`)
    // PCRE2's own message for a bad pattern is not ours to copy word for word.
    const words = (m[1] as string).replace(/^(pcre2_compile\(\) failed:).*/, '$1')
    await assert.rejects(loadNginxConf({ file, prefix: dir }), (err: Error) => {
      assert.ok(err.message.includes(words), `${line}: nginx "${m[1]}", ours "${err.message}"`)
      return true
    })
  }
})
