import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { freePort, nginxMissing, REPO, rawRequest, startNginx, startOurs } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'
import { type Received, type Script, startRawBackend } from './raw-backend.js'

/**
 * proxy_cache under real nginx 1.22.1 and under static-server, on the same nginx.conf, each
 * with its own counting backend. Every step compares the status line, the header lines (minus
 * Date and Server), the body, X-Cache ($upstream_cache_status) and what reached the backend
 * (request line and conditional fields): hit/miss sequences, proxy_cache_valid per status,
 * bypass, no_cache, Set-Cookie, Vary, X-Accel-Expires / Cache-Control / Expires, revalidation,
 * stale answers on backend errors, updating, and proxy_cache_lock (N concurrent misses, one
 * fetch). Expiry uses 1 s validity and waits of 2.5 s (nginx counts in whole seconds).
 */

interface Step {
  path?: string
  method?: string
  headers?: string[]
  /** Sleep before the step. */
  waitMs?: number
  /** Sent together, each after its own delay (ms); outcomes compared as a sorted list. */
  parallel?: number[]
}

interface Scenario {
  name: string
  /** Directives inside the location (the proxy_pass and proxy_cache lines are added). */
  loc: string
  /** The backend's answer to its `n`th request for this path. */
  answer: (r: Received, n: number) => Script
  steps: Step[]
}

const H = (status: string, fields: string[], body = '') =>
  `HTTP/1.1 ${status}\r\n${fields.map((f) => `${f}\r\n`).join('')}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
const ok = (n: number, fields: string[] = []) => ({ bytes: H('200 OK', ['Content-Type: text/plain', ...fields], `body ${n}\n`) })
const twice: Step[] = [{}, {}]
const LM = 'Last-Modified: Tue, 02 Jan 2024 03:04:05 GMT'

const SCENARIOS: Scenario[] = [
  { name: 'valid 200: miss then hit', loc: 'proxy_cache_valid 200 1m;', answer: (_r, n) => ok(n), steps: twice },
  {
    // The filters run on a hit as on the miss (ngx_http_upstream_cache_send): SSI and charset.
    name: 'ssi and charset run on a hit as on the miss',
    loc: 'proxy_cache_valid 200 1m; ssi on; charset utf-8;',
    answer: (_r, n) => ({ bytes: H('200 OK', ['Content-Type: text/html'], `<!--# echo var="uri" --> ${n}\n`) }),
    steps: twice,
  },
  { name: 'no validity anywhere: never stored', loc: '', answer: (_r, n) => ok(n), steps: twice },
  {
    name: 'a time alone is 200 301 302: a 302 is stored, a 404 is not',
    loc: 'proxy_cache_valid 1m;',
    answer: (r, n) => (r.line.includes('/r') ? { bytes: H('302 Moved Temporarily', ['Location: /elsewhere'], '') } : { bytes: H('404 Not Found', [], `nf ${n}`) }),
    steps: [{ path: '/r' }, { path: '/r' }, { path: '/nf' }, { path: '/nf' }],
  },
  {
    name: 'any after 200: a 404 is stored',
    loc: 'proxy_cache_valid 200 1m; proxy_cache_valid any 1m;',
    answer: (_r, n) => ({ bytes: H('404 Not Found', [], `nf ${n}`) }),
    steps: twice,
  },
  {
    name: 'proxy_cache_valid 0 stores nothing for that status',
    loc: 'proxy_cache_valid 200 0; proxy_cache_valid any 1m;',
    answer: (_r, n) => ok(n),
    steps: twice,
  },
  { name: 'Cache-Control max-age without proxy_cache_valid', loc: '', answer: (_r, n) => ok(n, ['Cache-Control: max-age=60']), steps: twice },
  { name: 'Cache-Control s-maxage=0 beats proxy_cache_valid', loc: 'proxy_cache_valid 1m;', answer: (_r, n) => ok(n, ['Cache-Control: public, s-maxage=0']), steps: twice },
  { name: 'Cache-Control private', loc: 'proxy_cache_valid 1m;', answer: (_r, n) => ok(n, ['Cache-Control: private']), steps: twice },
  { name: 'Cache-Control no-store', loc: 'proxy_cache_valid 1m;', answer: (_r, n) => ok(n, ['Cache-Control: no-store']), steps: twice },
  { name: 'Cache-Control no-cache', loc: 'proxy_cache_valid 1m;', answer: (_r, n) => ok(n, ['Cache-Control: no-cache']), steps: twice },
  { name: 'Cache-Control ignored', loc: 'proxy_cache_valid 1m; proxy_ignore_headers Cache-Control;', answer: (_r, n) => ok(n, ['Cache-Control: no-store']), steps: twice },
  { name: 'X-Accel-Buffering: no is not stored', loc: 'proxy_cache_valid 1m;', answer: (_r, n) => ok(n, ['X-Accel-Buffering: no']), steps: twice },
  { name: 'proxy_buffering off stores nothing', loc: 'proxy_cache_valid 1m; proxy_buffering off;', answer: (_r, n) => ok(n), steps: twice },
  { name: 'Set-Cookie is not stored', loc: 'proxy_cache_valid 1m;', answer: (_r, n) => ok(n, ['Set-Cookie: a=1']), steps: twice },
  { name: 'Set-Cookie ignored: stored with it', loc: 'proxy_cache_valid 1m; proxy_ignore_headers Set-Cookie;', answer: (_r, n) => ok(n, ['Set-Cookie: a=1']), steps: twice },
  { name: 'X-Accel-Expires 0', loc: 'proxy_cache_valid 1m;', answer: (_r, n) => ok(n, ['X-Accel-Expires: 0']), steps: twice },
  { name: 'X-Accel-Expires before no-cache wins', loc: '', answer: (_r, n) => ok(n, ['X-Accel-Expires: 60', 'Cache-Control: no-cache']), steps: twice },
  { name: 'no-cache before X-Accel-Expires', loc: '', answer: (_r, n) => ok(n, ['Cache-Control: no-cache', 'X-Accel-Expires: 60']), steps: twice },
  { name: 'X-Accel-Expires ignored', loc: 'proxy_ignore_headers X-Accel-Expires;', answer: (_r, n) => ok(n, ['X-Accel-Expires: 60']), steps: twice },
  { name: 'Expires in the past', loc: 'proxy_cache_valid 1m;', answer: (_r, n) => ok(n, ['Expires: Thu, 01 Jan 2015 00:00:00 GMT']), steps: twice },
  { name: 'Expires in the future', loc: '', answer: (_r, n) => ok(n, ['Expires: Thu, 01 Jan 2099 00:00:00 GMT']), steps: twice },
  { name: 'Vary: * is not stored', loc: 'proxy_cache_valid 1m;', answer: (_r, n) => ok(n, ['Vary: *']), steps: twice },
  {
    name: 'Vary: one entry per variant',
    loc: 'proxy_cache_valid 1m;',
    answer: (_r, n) => ok(n, ['Vary: Accept-Language']),
    steps: [{ headers: ['Accept-Language: en'] }, { headers: ['Accept-Language: en'] }, { headers: ['Accept-Language: fr'] }, { headers: ['Accept-Language: fr'] }, { headers: ['Accept-Language: en'] }],
  },
  {
    name: 'proxy_cache_bypass: fetched, and the answer stored',
    loc: 'proxy_cache_valid 1m; proxy_cache_bypass $http_x_bypass;',
    answer: (_r, n) => ok(n),
    steps: [{}, { headers: ['X-Bypass: 1'] }, {}, { headers: ['X-Bypass: 0'] }],
  },
  {
    name: 'proxy_no_cache: fetched, not stored',
    loc: 'proxy_cache_valid 1m; proxy_no_cache $http_x_nostore;',
    answer: (_r, n) => ok(n),
    steps: [{ headers: ['X-Nostore: yes'] }, {}, {}],
  },
  {
    name: 'proxy_no_cache on a backend field',
    loc: 'proxy_cache_valid 1m; proxy_no_cache $upstream_http_x_private;',
    answer: (_r, n) => ok(n, ['X-Private: 1']),
    steps: twice,
  },
  { name: 'POST is not cached by default', loc: 'proxy_cache_valid 1m;', answer: (_r, n) => ok(n), steps: [{ method: 'POST' }, { method: 'POST' }] },
  { name: 'proxy_cache_methods POST', loc: 'proxy_cache_valid 1m; proxy_cache_methods POST;', answer: (_r, n) => ok(n), steps: [{ method: 'POST' }, { method: 'POST' }, {}] },
  { name: 'HEAD is fetched as GET and stored', loc: 'proxy_cache_valid 1m;', answer: (_r, n) => ok(n), steps: [{ method: 'HEAD' }, {}, { method: 'HEAD' }] },
  { name: 'proxy_cache_convert_head off', loc: 'proxy_cache_valid 1m; proxy_cache_convert_head off; proxy_cache_key $request_method$request_uri;', answer: (r, n) => (r.line.startsWith('HEAD') ? { bytes: H('200 OK', [], '').replace('Content-Length: 0', 'Content-Length: 7') } : ok(n)), steps: [{ method: 'HEAD' }, { method: 'HEAD' }, {}] },
  { name: 'proxy_cache_key without the arguments', loc: 'proxy_cache_valid 1m; proxy_cache_key $uri;', answer: (_r, n) => ok(n), steps: [{ path: '/x?a=1' }, { path: '/x?a=2' }] },
  { name: 'the client conditional and range fields do not reach the backend', loc: 'proxy_cache_valid 1m;', answer: (_r, n) => ok(n, ['ETag: "e1"', LM]), steps: [{ headers: ['If-None-Match: "zz"', 'Range: bytes=0-1', 'If-Modified-Since: Tue, 02 Jan 2024 03:04:05 GMT'] }, {}] },
  { name: 'proxy_cache_min_uses 2', loc: 'proxy_cache_valid 1m; proxy_cache_min_uses 2;', answer: (_r, n) => ok(n), steps: [{}, {}, {}, {}] },
  { name: 'a chunked answer, stored', loc: 'proxy_cache_valid 1m;', answer: () => ({ bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' }), steps: twice },
  { name: 'a close-delimited answer, stored', loc: 'proxy_cache_valid 1m;', answer: () => ({ bytes: 'HTTP/1.1 200 OK\r\nX-Odd: 1\r\n\r\nuntil close', close: true }), steps: twice },
  { name: 'a 301 with the backend address, rewritten on every hit', loc: 'proxy_cache_valid 301 1m;', answer: () => ({ bytes: H('301 Moved Permanently', ['Location: http://127.0.0.1:@B@/SELF/there'], '') }), steps: twice },
  {
    name: 'expired after its validity',
    loc: 'proxy_cache_valid 200 1s;',
    answer: (_r, n) => ok(n),
    steps: [{}, {}, { waitMs: 2500 }, {}],
  },
  {
    name: 'proxy_cache_revalidate: a 304 renews the entry',
    loc: 'proxy_cache_valid 200 1s; proxy_cache_revalidate on;',
    answer: (r, n) => (r.headers.some((h) => /^if-none-match:/i.test(h)) ? { bytes: 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n' } : ok(n, ['ETag: "v1"', LM])),
    steps: [{}, { waitMs: 2500 }, {}],
  },
  {
    name: 'revalidation off: an expired entry is fetched whole',
    loc: 'proxy_cache_valid 200 1s;',
    answer: (_r, n) => ok(n, ['ETag: "v1"', LM]),
    steps: [{}, { waitMs: 2500 }, {}],
  },
  {
    name: 'use_stale http_500: the expired entry stands in',
    loc: 'proxy_cache_valid 200 1s; proxy_cache_use_stale http_500;',
    answer: (_r, n) => (n === 1 ? ok(n) : { bytes: H('500 Internal Server Error', [], `err ${n}`) }),
    steps: [{}, { waitMs: 2500 }, {}],
  },
  {
    name: 'a 500 without use_stale goes to the client',
    loc: 'proxy_cache_valid 200 1s;',
    answer: (_r, n) => (n === 1 ? ok(n) : { bytes: H('500 Internal Server Error', [], `err ${n}`) }),
    steps: [{}, { waitMs: 2500 }, {}],
  },
  {
    name: 'use_stale error: a backend that drops the connection',
    loc: 'proxy_cache_valid 200 1s; proxy_cache_use_stale error timeout;',
    answer: (_r, n) => (n === 1 ? ok(n) : { reset: true }),
    steps: [{}, { waitMs: 2500 }, {}],
  },
  {
    name: 'Cache-Control stale-if-error without use_stale',
    loc: '',
    answer: (_r, n) => (n === 1 ? ok(n, ['Cache-Control: max-age=1, stale-if-error=60']) : { bytes: H('503 Service Unavailable', [], 'down') }),
    steps: [{}, { waitMs: 2500 }, {}],
  },
  {
    name: 'proxy_cache_lock: concurrent misses make one fetch',
    loc: 'proxy_cache_valid 200 1m; proxy_cache_lock on;',
    answer: (_r, n) => ({ ...ok(n), delayMs: 400 }),
    steps: [{ parallel: [0, 50, 50, 50, 50] }, {}],
  },
  {
    name: 'proxy_cache_lock_timeout: a waiter fetches for itself, stores nothing',
    loc: 'proxy_cache_valid 200 1m; proxy_cache_lock on; proxy_cache_lock_timeout 200ms;',
    answer: (_r, n) => ({ ...ok(n), delayMs: 800 }),
    steps: [{ parallel: [0, 50] }, {}],
  },
  {
    name: 'proxy_cache_lock_age: past it a waiter fetches and stores',
    loc: 'proxy_cache_valid 200 1m; proxy_cache_lock on; proxy_cache_lock_age 200ms;',
    answer: (_r, n) => ({ ...ok(n), delayMs: 800 }),
    steps: [{ parallel: [0, 50] }, {}],
  },
  {
    name: 'without proxy_cache_lock each concurrent miss fetches',
    loc: 'proxy_cache_valid 200 1m;',
    answer: (_r, n) => ({ ...ok(n), delayMs: 400 }),
    steps: [{ parallel: [0, 100, 100] }],
  },
  {
    name: 'use_stale updating: stale while another request updates',
    loc: 'proxy_cache_valid 200 1s; proxy_cache_use_stale updating;',
    answer: (_r, n) => (n === 1 ? ok(n) : { ...ok(n), delayMs: 600 }),
    steps: [{}, { waitMs: 2500, parallel: [0, 200] }, {}],
  },
  {
    name: 'proxy_cache_background_update: stale at once, updated behind',
    loc: 'proxy_cache_valid 200 1s; proxy_cache_use_stale updating; proxy_cache_background_update on;',
    answer: (_r, n) => ok(n),
    steps: [{}, { waitMs: 2500 }, { waitMs: 300 }],
  },
  {
    name: 'proxy_cache_background_update with revalidation',
    loc: 'proxy_cache_valid 200 1s; proxy_cache_use_stale updating; proxy_cache_background_update on; proxy_cache_revalidate on;',
    answer: (r, n) => (r.headers.some((h) => /^if-none-match:/i.test(h)) ? { bytes: 'HTTP/1.1 304 Not Modified\r\nETag: "b1"\r\n\r\n' } : ok(n, ['ETag: "b1"'])),
    steps: [{}, { waitMs: 2500 }, { waitMs: 300 }],
  },
  {
    name: 'proxy_cache_background_update without use_stale updating: EXPIRED',
    loc: 'proxy_cache_valid 200 1s; proxy_cache_background_update on;',
    answer: (_r, n) => ok(n),
    steps: [{}, { waitMs: 2500 }, {}],
  },
  {
    name: 'a cached hit answers If-None-Match',
    loc: 'proxy_cache_valid 1m;',
    answer: (_r, n) => ok(n, ['ETag: "e1"', LM]),
    steps: [{}, { headers: ['If-None-Match: "e1"'] }, { headers: ['If-Modified-Since: Tue, 02 Jan 2024 03:04:05 GMT'] }],
  },
  {
    name: 'a range of a cached answer',
    loc: 'proxy_cache_valid 1m;',
    answer: (_r, n) => ok(n, ['Accept-Ranges: bytes']),
    steps: [{}, { headers: ['Range: bytes=0-3'] }, { headers: ['Range: bytes=2-'] }, { headers: ['Range: bytes=0-1', 'If-Range: "other"'] }],
  },
  {
    name: 'a range of a cacheable miss',
    loc: 'proxy_cache_valid 1m;',
    answer: (_r, n) => ok(n, ['Accept-Ranges: bytes', 'ETag: "r1"']),
    steps: [{ headers: ['Range: bytes=1-2', 'If-Range: "r1"'] }, { headers: ['Range: bytes=-2'] }],
  },
  {
    name: 'no range without Accept-Ranges from the backend',
    loc: 'proxy_cache_valid 1m;',
    answer: (_r, n) => ok(n),
    steps: [{}, { headers: ['Range: bytes=0-3'] }],
  },
  {
    name: 'If-None-Match on a cacheable miss, and If-Match failing on a hit',
    loc: 'proxy_cache_valid 1m;',
    answer: (_r, n) => ok(n, ['ETag: "m1"']),
    steps: [{ headers: ['If-None-Match: "m1"'] }, { headers: ['If-Match: "other"'] }],
  },
]

interface Seen {
  line: string
  headers: string[]
  body: string
  backend: string[]
}

function conf(dir: string, port: number, backend: number, tag: string): string {
  const loc = (s: Scenario, i: number) => `
        location /s${i}/ {
            proxy_pass http://127.0.0.1:${backend};
            proxy_cache z${i};
            add_header X-Cache $upstream_cache_status always;
            ${s.loc.replaceAll('@B@', String(backend)).replaceAll('SELF', `s${i}`)}
        }`
  return `${httpHead(dir, port, join(dir, `${tag}.pid`))}
    ${SCENARIOS.map((_s, i) => `proxy_cache_path ${dir}/cache-${tag}-${i} keys_zone=z${i}:1m;`).join('\n    ')}
    server {
        listen 127.0.0.1:${port};
        server_name example.com;
        ${SCENARIOS.map(loc).join('')}
    }
}
`
}

function parse(raw: Buffer, port: number, backend: number): Omit<Seen, 'backend'> {
  const norm = (s: string) => s.replaceAll(`:${port}`, ':PORT').replaceAll(`:${backend}`, ':BACKEND').replaceAll('static-server', 'nginx')
  const end = raw.indexOf('\r\n\r\n')
  if (end < 0) return { line: `(no head) ${raw.toString('latin1')}`, headers: [], body: '' }
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n')
  let body = raw.subarray(end + 4).toString('latin1')
  const headers = lines.slice(1).filter((h) => !/^(date|server):/i.test(h))
  if (headers.some((h) => /^transfer-encoding:\s*chunked$/i.test(h))) body = dechunk(body)
  // Our built-in pages name us: 8 bytes longer than nginx's.
  const page = body.includes('<center>static-server</center>')
  return {
    line: lines[0] as string,
    headers: headers.map((h) => norm(page && /^content-length:/i.test(h) ? `Content-Length: ${Number(h.slice(15)) - 8}` : h)),
    body: norm(body),
  }
}

function dechunk(s: string): string {
  let out = ''
  let i = 0
  for (;;) {
    const nl = s.indexOf('\r\n', i)
    if (nl < 0) return `${out}[cut]`
    const n = Number.parseInt(s.slice(i, nl), 16)
    if (!n) return out
    out += s.slice(nl + 2, nl + 2 + n)
    i = nl + 2 + n + 2
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Runs every scenario against one server; its backend counts per path. */
async function run(addr: HostPort, take: () => Received[], backend: number): Promise<Seen[][]> {
  const out: Seen[][] = []
  for (const [i, s] of SCENARIOS.entries()) {
    const seen: Seen[] = []
    for (const step of s.steps) {
      if (step.waitMs) await sleep(step.waitMs)
      take()
      const one = async (delay: number) => {
        if (delay) await sleep(delay)
        const path = `/s${i}${step.path ?? '/x'}`
        const body = step.method === 'POST' ? 'data' : ''
        const req = `${step.method ?? 'GET'} ${path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n${(step.headers ?? []).map((h) => `${h}\r\n`).join('')}${body ? `Content-Length: ${body.length}\r\n` : ''}\r\n${body}`
        return parse(await rawRequest(addr, req), addr.port, backend)
      }
      const answers = step.parallel ? await Promise.all(step.parallel.map(one)) : [await one(0)]
      await sleep(20)
      const got = take().map((r) => [r.line, ...r.headers.filter((h) => /^(if-|range)/i.test(h))].join(' | '))
      if (step.parallel) answers.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
      for (const [k, a] of answers.entries()) seen.push({ ...a, backend: k === 0 ? got.sort() : [] })
    }
    out.push(seen)
  }
  return out
}

async function counting(): Promise<{ port: number; take: () => Received[]; close: () => Promise<void> }> {
  const counts = new Map<string, number>()
  let port = 0
  const b = await startRawBackend('b', (r) => {
    const path = r.line.split(' ')[1] as string
    const m = /^\/s(\d+)/.exec(path)
    const s = SCENARIOS[Number(m?.[1] ?? -1)]
    const n = (counts.get(path) ?? 0) + 1
    counts.set(path, n)
    const sc = s ? s.answer(r, n) : { bytes: H('404 Not Found', [], '') }
    return 'bytes' in sc && typeof sc.bytes === 'string' ? { ...sc, bytes: sc.bytes.replaceAll('@B@', String(port)).replaceAll('SELF', m ? `s${m[1]}` : '') } : sc
  })
  port = b.port
  return { port: b.port, take: () => b.take(), close: () => b.close() }
}

test('proxy_cache against nginx 1.22.1', { skip: nginxMissing, timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'proxy-cache-'))
  await mkdir(join(dir, 'tmp'), { recursive: true })
  await copyFile(join(REPO, 'config/mime.types'), join(dir, 'mime.types'))
  const theirBackend = await counting()
  const ourBackend = await counting()
  let nginx: ChildProcess | undefined
  t.after(async () => {
    nginx?.kill('SIGKILL')
    await theirBackend.close()
    await ourBackend.close()
    await rm(dir, { recursive: true, force: true })
  })
  const theirPort = await freePort()
  await writeFile(join(dir, 'nginx.conf'), conf(dir, theirPort, theirBackend.port, 'nginx'))
  nginx = await startNginx(dir, join(dir, 'nginx.conf'), theirPort)
  const ourPort = await freePort()
  await writeFile(join(dir, 'ours.conf'), conf(dir, ourPort, ourBackend.port, 'ours'))
  const ours = await startOurs(dir, join(dir, 'ours.conf'))
  t.after(() => ours.server.close({ drainTimeoutMs: 50 }))
  const [theirs, mine] = await Promise.all([
    run({ host: '127.0.0.1', port: theirPort }, theirBackend.take, theirBackend.port),
    run(ours.addr[0] as HostPort, ourBackend.take, ourBackend.port),
  ])
  const differing: string[] = []
  for (const [i, s] of SCENARIOS.entries()) {
    if (JSON.stringify(mine[i]) !== JSON.stringify(theirs[i])) differing.push(`${s.name}\n  nginx: ${JSON.stringify(theirs[i])}\n  ours:  ${JSON.stringify(mine[i])}`)
  }
  assert.deepEqual(differing, [], differing.join('\n'))
})

/**
 * max_size bounds the memory a zone holds: an answer larger than the zone is relayed whole and
 * never stored (nginx stores it on disk and its cache manager evicts later: README).
 */
test('an answer larger than max_size is relayed, not kept', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'proxy-cache-max-'))
  await copyFile(join(REPO, 'config/mime.types'), join(dir, 'mime.types'))
  let fetches = 0
  const big = 'x'.repeat(100_000)
  const b = await startRawBackend('big', () => {
    fetches++
    return { bytes: H('200 OK', ['Content-Type: text/plain'], big) }
  })
  const port = await freePort()
  await writeFile(
    join(dir, 'ours.conf'),
    `${httpHead(dir, port, join(dir, 'ours.pid'))}
    proxy_cache_path ${dir}/c keys_zone=big:1m max_size=64k;
    server {
        listen 127.0.0.1:${port};
        location / { proxy_pass http://127.0.0.1:${b.port}; proxy_cache big; proxy_cache_valid 1m; add_header X-Cache $upstream_cache_status; }
    }
}
`,
  )
  const ours = await startOurs(dir, join(dir, 'ours.conf'))
  t.after(async () => {
    await ours.server.close({ drainTimeoutMs: 50 })
    await b.close()
    await rm(dir, { recursive: true, force: true })
  })
  for (let i = 0; i < 2; i++) {
    const r = parse(await rawRequest(ours.addr[0] as HostPort, 'GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), port, b.port)
    assert.equal(r.body, big)
    assert.ok(r.headers.includes('X-Cache: MISS'), r.headers.join(', '))
  }
  assert.equal(fetches, 2)
})
