import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { get, makeFixtures, nginxMissing, startBoth } from './helpers.js'
import { assertRefusedAsNginx, httpHead } from './nginx-test-conf.js'
import { startRawBackend } from './raw-backend.js'

/**
 * limit_rate, limit_rate_after, `set $limit_rate`, a rate from a variable and a backend's
 * X-Accel-Limit-Rate, under both programs on one nginx.conf.
 *
 * No assertion depends on how fast the machine is. nginx's write filter never lets more than
 * `after + rate * (now_sec - start_sec + 1)` bytes (head included) leave by a given moment, and
 * start_sec is no earlier than the second the client sent its request, so for a client that
 * measures T seconds since it sent, the bytes it has received never exceed
 * `after + rate * (floor(T) + 2)`: checked on every chunk. A slow machine only makes T larger.
 * That bound is what an unpaced server breaks at once (the whole body in milliseconds). The
 * other side is generous: the `after` bytes are sent as one burst, so the client sees them
 * within 8 s, where an implementation ignoring limit_rate_after would need 32 s at 1k/s.
 */
const RATE = 1024
const AFTER = 32 * 1024
/** After the burst, three seconds' worth at the rate: the whole answer takes at least about 2 s. */
const SIZE = AFTER + 3 * RATE
const BODY = Buffer.alloc(SIZE, 'limit-rate ')

function config(dir: string, port: number, pid: string, backend: number): string {
  return `${httpHead(dir, port, pid)}
    map $arg_r $rate { default 1k; none 0; bad 12q; }
    map $arg_a $after { default 32k; }
    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        root ${dir}/root;
        location /direct/ { alias ${dir}/root/; limit_rate 1k; limit_rate_after 32k; }
        location /crawl/ { alias ${dir}/root/; limit_rate 1k; }
        location /var/ { alias ${dir}/root/; limit_rate $rate; limit_rate_after $after; }
        location /set/ { alias ${dir}/root/; set $limit_rate 1k; limit_rate_after 32k; }
        location /set-over/ { alias ${dir}/root/; limit_rate 100k; set $limit_rate 1k; limit_rate_after 32k; }
        location /accel/ { proxy_pass http://127.0.0.1:${backend}; limit_rate_after 32k; }
        location /accel-ignored/ { proxy_pass http://127.0.0.1:${backend}; proxy_ignore_headers X-Accel-Limit-Rate; }
        location /seen/ { limit_rate 1k; add_header X-Rate "[$limit_rate]" always; return 200 "rate=$limit_rate\\n"; }
        location /seen-set/ { set $limit_rate 2k; add_header X-Rate "[$limit_rate]" always; return 200 "rate=$limit_rate\\n"; }
        location /seen-bad/ { set $limit_rate 2q; add_header X-Rate "[$limit_rate]" always; return 200 "rate=$limit_rate\\n"; }
        location /quick/ { return 200 "quick\\n"; }
    }
}
`
}

interface Paced {
  head: string
  body: Buffer
  /** The `after` burst arrived (within 8 s). */
  burst: boolean
  /** The first chunk that broke the bound, if any. */
  overrun: string | undefined
}

/** One GET read chunk by chunk, each chunk checked against the pacing bound. */
function paced(addr: HostPort, path: string, pipelined = ''): Promise<Paced> {
  return new Promise((resolve, reject) => {
    const s = net.connect(addr.port, addr.host)
    const chunks: Buffer[] = []
    let total = 0
    let burst = false
    let overrun: string | undefined
    const t0 = Date.now()
    s.on('data', (c: Buffer) => {
      chunks.push(c)
      total += c.length
      const secs = Math.floor((Date.now() - t0) / 1000)
      // A pipelined second answer is small and comes after the paced one: room for it.
      const bound = AFTER + RATE * (secs + 2) + (pipelined ? 512 : 0)
      if (total > bound && overrun === undefined) overrun = `${total} bytes after ${Date.now() - t0} ms (bound ${bound})`
      if (total >= AFTER) burst = true
    })
    const burstTimer = setTimeout(() => {
      if (!burst) s.destroy()
    }, 8000)
    s.setTimeout(15_000, () => s.destroy())
    s.on('error', reject)
    s.on('close', () => {
      clearTimeout(burstTimer)
      const raw = Buffer.concat(chunks)
      const end = raw.indexOf('\r\n\r\n')
      resolve({ head: raw.subarray(0, end).toString('latin1'), body: raw.subarray(end + 4), burst, overrun })
    })
    s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n${pipelined ? '' : 'Connection: close\r\n'}\r\n${pipelined}`)
  })
}

/** A GET at `limit_rate 1k` from the first byte, watched chunk by chunk until the test cuts it. */
function crawl(addr: HostPort): { socket: net.Socket; ended: boolean; overrun: string | undefined } {
  const s = net.connect(addr.port, addr.host)
  const state = { socket: s, ended: false, overrun: undefined as string | undefined }
  let total = 0
  const t0 = Date.now()
  s.on('data', (c: Buffer) => {
    total += c.length
    const bound = RATE * (Math.floor((Date.now() - t0) / 1000) + 2)
    if (total > bound && state.overrun === undefined) state.overrun = `${total} bytes after ${Date.now() - t0} ms (bound ${bound})`
  })
  s.on('end', () => {
    state.ended = true
  })
  s.on('error', () => {})
  s.write('GET /crawl/paced.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  return state
}

function dechunk(body: Buffer): Buffer {
  const out: Buffer[] = []
  let at = 0
  for (;;) {
    const eol = body.indexOf('\r\n', at)
    const n = Number.parseInt(body.subarray(at, eol).toString('latin1'), 16)
    if (!(n > 0)) return Buffer.concat(out)
    out.push(body.subarray(eol + 2, eol + 2 + n))
    at = eol + 4 + n
  }
}

test('differential: limit_rate, limit_rate_after, $limit_rate and X-Accel-Limit-Rate as nginx', { skip: nginxMissing }, async (t) => {
  const dir = await makeFixtures()
  await writeFile(join(dir, 'root/paced.txt'), BODY)
  const backend = await startRawBackend('b', (r) => ({
    bytes: Buffer.concat([
      Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${SIZE}\r\n${r.line.includes('ignored') ? '' : 'X-Accel-Limit-Rate: 1024\r\n'}\r\n`),
      BODY,
    ]),
  }))
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, pid, backend.port))
  t.after(async () => {
    nginx.kill('SIGKILL')
    await ours.close()
    await backend.close()
  })

  const cases = ['/direct/paced.txt', '/var/paced.txt', '/set/paced.txt', '/set-over/paced.txt', '/accel/x']
  // Both servers and every case at once: the whole test takes a few seconds, not one per case.
  const runs = await Promise.all(cases.flatMap((path) => [paced(theirAddr, path), paced(ourAddr, path)]))
  for (const [i, path] of cases.entries()) {
    for (const [who, r] of [['nginx', runs[2 * i]], ['ours', runs[2 * i + 1]]] as const) {
      assert.ok(r, path)
      assert.equal(r.overrun, undefined, `${who} ${path}: faster than the rate allows`)
      assert.ok(r.burst, `${who} ${path}: the first ${AFTER} bytes did not come as one burst`)
      assert.ok(dechunk(r.body).equals(BODY) || r.body.equals(BODY), `${who} ${path}: body differs`)
    }
  }

  // No rate: a variable that is `0` or not a size (nginx logs "invalid size"), an ignored
  // X-Accel-Limit-Rate. The answers come whole while a paced one is still going.
  // Meanwhile a client crawls at 1k/s from byte 0 (about 34 s for the whole answer): it is
  // cut off once the others are done, which they are long before it could finish.
  const crawls = [crawl(theirAddr), crawl(ourAddr)]
  for (const path of ['/var/paced.txt?r=none', '/var/paced.txt?r=bad', '/accel-ignored/x', '/quick/']) {
    for (const addr of [theirAddr, ourAddr]) {
      const r = await get(addr, path)
      assert.equal(r.status, 200, path)
      assert.ok(r.body.length === SIZE || path === '/quick/', `${path}: ${r.body.length}`)
    }
  }
  // Other clients are not slowed: all of the above finished while the crawls went on, paced.
  for (const [who, c] of [['nginx', crawls[0]], ['ours', crawls[1]]] as const) {
    assert.ok(c, who)
    assert.equal(c.ended, false, `${who}: the crawl was over before the unpaced answers`)
    assert.equal(c.overrun, undefined, `${who}: the crawl went faster than 1k/s`)
    c.socket.destroy()
  }

  // What $limit_rate reads, in the head and the body.
  for (const path of ['/seen/', '/seen-set/', '/seen-bad/']) {
    const [theirs, mine] = [await get(theirAddr, path), await get(ourAddr, path)]
    assert.equal(mine.headers.get('x-rate'), theirs.headers.get('x-rate'), path)
    assert.equal(mine.body.toString(), theirs.body.toString(), path)
  }
})

test('differential: two paced answers pipelined on one connection keep their order', { skip: nginxMissing }, async (t) => {
  const dir = await makeFixtures()
  await writeFile(join(dir, 'root/paced.txt'), BODY)
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, pid, 1))
  t.after(async () => {
    nginx.kill('SIGKILL')
    await ours.close()
  })
  const second = 'GET /quick/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
  const [theirs, mine] = await Promise.all([paced(theirAddr, '/direct/paced.txt', second), paced(ourAddr, '/direct/paced.txt', second)])
  for (const [who, r] of [['nginx', theirs], ['ours', mine]] as const) {
    assert.equal(r.overrun, undefined, who)
    // The paced body, whole, then the second answer after it.
    assert.ok(r.body.subarray(0, SIZE).equals(BODY), `${who}: the first body is not whole before the second answer`)
    assert.match(r.body.subarray(SIZE).toString('latin1'), /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nquick\n$/, who)
  }
})

test('limit_rate and limit_rate_after values nginx refuses are refused in its words', { skip: nginxMissing }, async () => {
  const dir = await makeFixtures()
  for (const line of [
    'limit_rate abc;',
    'limit_rate 1g;',
    'limit_rate "";',
    'limit_rate -1;',
    'limit_rate_after 1x;',
    'limit_rate 1k 2;',
    'limit_rate 1k; limit_rate 2k;',
    'server { limit_rate $nonexistent; }',
  ]) {
    await assertRefusedAsNginx(dir, line)
  }
})
