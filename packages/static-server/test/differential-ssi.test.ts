import assert from 'node:assert/strict'
import { mkdir, utimes, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import type { HostPort } from '@edgestack/common'
import { freePort, get, makeFixtures, nginxMissing, type RawResponse, startBoth } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'
import { startRawBackend } from './raw-backend.js'
import { backendParts, PAGES, REQUESTS } from './ssi-corpus.js'

function config(dir: string, port: number, pid: string, backend: number, dead: number): string {
  const root = join(dir, 'root')
  return `${httpHead(dir, port, pid)}
    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        root ${root};
        ssi on;
        ssi_min_file_chunk 2k;
        ssi_ignore_recycled_buffers off;
        location /typed/ { alias ${root}/; ssi_types text/plain; }
        location /silent/ { alias ${root}/; ssi_silent_errors on; }
        location /short/ { alias ${root}/; ssi_value_length 40; }
        location /off/ { alias ${root}/; ssi off; }
        location /lm/ { alias ${root}/; ssi_last_modified on; }
        location /gz/ { alias ${root}/; gzip on; gzip_min_length 1; }
        location /ep/ { error_page 404 /err404.shtml; }
        location = /ret { default_type text/html; return 200 '<!--# echo var="uri" --> returned'; }
        location /only-internal/ { internal; alias ${root}/inc/; }
        location /be/ { proxy_pass http://127.0.0.1:${backend}/; }
        location /dead/ { proxy_pass http://127.0.0.1:${dead}/; }
    }
}
`
}

/** The fields the SSI filter decides, and the body (inflated when gzip). */
function view(r: RawResponse): Record<string, string | undefined> {
  const h = (n: string) => r.headers.get(n)
  let body = r.body
  if (h('content-encoding') === 'gzip' && body.length > 0) body = gunzipSync(body)
  return {
    status: String(r.status),
    'content-type': h('content-type'),
    'content-length': h('content-length'),
    'transfer-encoding': h('transfer-encoding'),
    'last-modified': h('last-modified'),
    etag: h('etag'),
    'accept-ranges': h('accept-ranges'),
    'content-encoding': h('content-encoding'),
    location: h('location')?.replace(/:\d+\//, ':PORT/'),
    // Our name in built-in pages is a documented difference (DIFFERENCES.md).
    body: body.toString('latin1').replaceAll('<hr><center>static-server</center>', '<hr><center>nginx</center>'),
  }
}

test('differential: SSI pages (commands, errors, includes, proxied and streamed bodies) answered byte for byte as nginx answers them', { skip: nginxMissing }, async (t) => {
  const dir = await makeFixtures()
  const t0 = new Date('2024-01-02T03:04:05Z')
  for (const [name, content] of Object.entries(PAGES)) {
    const file = join(dir, 'root', name)
    await mkdir(dirname(file), { recursive: true })
    await writeFile(file, content)
    await utimes(file, t0, t0)
  }
  const backend = await startRawBackend('be', (r) => {
    const path = r.line.split(' ')[1] as string
    const p = backendParts(path)
    return { parts: p.parts, gapMs: 5, close: p.close }
  })
  const dead = await freePort()
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, pid, backend.port, dead))
  t.after(async () => {
    nginx.kill('SIGKILL')
    await ours.close()
    await backend.close()
  })
  const fetch = (addr: HostPort, r: (typeof REQUESTS)[number]) => get(addr, r.path, r.headers ?? {}, r.method ?? 'GET')
  const diffs: string[] = []
  for (const r of REQUESTS) {
    const theirs = view(await fetch(theirAddr, r))
    const mine = view(await fetch(ourAddr, r))
    for (const k of Object.keys(theirs)) {
      if (theirs[k] !== mine[k]) diffs.push(`${r.method ?? 'GET'} ${r.path} ${k}:\n  nginx: ${JSON.stringify(theirs[k])}\n  ours:  ${JSON.stringify(mine[k])}`)
    }
  }
  t.diagnostic(`SSI corpus: ${REQUESTS.length} requests, ${diffs.length} differences`)
  assert.deepEqual(diffs, [])
})
