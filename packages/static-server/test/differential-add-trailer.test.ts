import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { makeFixtures, nginxMissing, rawRequest, startBoth } from './helpers.js'
import { assertRefusedAsNginx, httpHead } from './nginx-test-conf.js'
import { startRawBackend } from './raw-backend.js'

/**
 * add_trailer under both programs on one nginx.conf, read on raw sockets: an HTTP/1.1 answer
 * with a body becomes chunked (its Content-Length dropped) once a trailer applies to its status,
 * the fields go in the last chunk, `always` for the other statuses; HTTP/1.0, HEAD, 204 and 304
 * get none. Chunk sizes are each program's own: heads, bodies and trailers are compared.
 */
function config(dir: string, port: number, pid: string, backend: number): string {
  return `${httpHead(dir, port, pid)}
    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        root ${dir}/root;
        add_trailer X-Server-Level s;
        location /t/ {
            alias ${dir}/root/;
            add_trailer X-Uri $uri;
            add_trailer X-Always "a $status" always;
            add_trailer X-Empty "$arg_none";
            add_trailer X-Twice 1;
            add_trailer X-Twice 2;
        }
        location /inherit/ { alias ${dir}/root/; }
        location /r/ { add_trailer X-Status $status; add_trailer X-A yes always; return 200 "r body\\n"; }
        location /r404/ { add_trailer X-Status $status; add_trailer X-A yes always; return 404; }
        location /r302/ { add_trailer X-Status $status; return 302 /elsewhere; }
        location /r204/ { add_trailer X-Status $status always; return 204; }
        location /p/ { proxy_pass http://127.0.0.1:${backend}; add_trailer X-Proxied $upstream_status always; }
        location /mixed/ { add_header X-H h; add_trailer X-T t; return 200 "m\\n"; }
    }
}
`
}

interface Parsed {
  head: string
  body: string
  trailer: string
}

/**
 * One answer read until the server closes; a chunked body decoded and its trailer kept. The
 * head's fields are sorted (field order is not what add_trailer decides), the Date, the port
 * and the Server's name set aside (our server token is our own, DIFFERENCES.md).
 */
function parse(raw: Buffer, port: number): Parsed {
  const end = raw.indexOf('\r\n\r\n')
  const [line, ...fields] = raw
    .subarray(0, end)
    .toString('latin1')
    .replaceAll(`:${port}/`, ':PORT/')
    .split('\r\n')
  const head = [line, ...fields.filter((f) => !/^(date|server):/i.test(f)).sort()].join('\n')
  let rest = raw.subarray(end + 4)
  const signed = (b: Buffer) => b.toString('latin1').replace('<hr><center>nginx</center>', '<hr><center>static-server</center>')
  if (!/\nTransfer-Encoding: chunked/i.test(head)) return { head, body: signed(rest), trailer: '-' }
  const out: Buffer[] = []
  for (;;) {
    const eol = rest.indexOf('\r\n')
    const n = Number.parseInt(rest.subarray(0, eol).toString('latin1'), 16)
    if (Number.isNaN(n)) return { head, body: `${Buffer.concat(out).toString('latin1')}<broken chunk>`, trailer: '' }
    if (n === 0) {
      const t = rest.subarray(eol + 2)
      const close = t.indexOf('\r\n\r\n')
      const trailer = t.subarray(0, t.indexOf('\r\n') === 0 ? 0 : close + 2).toString('latin1')
      return { head, body: signed(Buffer.concat(out)), trailer: `${trailer}|after:${t.length - (trailer.length + 2)}` }
    }
    out.push(rest.subarray(eol + 2, eol + 2 + n))
    rest = rest.subarray(eol + 4 + n)
  }
}

async function ask(addr: HostPort, request: string): Promise<Parsed> {
  return parse(await rawRequest(addr, request), addr.port)
}

test('differential: add_trailer as nginx, on raw sockets', { skip: nginxMissing }, async (t) => {
  const dir = await makeFixtures()
  const backend = await startRawBackend('b', (r) => {
    if (r.line.includes('/p/chunked')) return { bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Up: 1\r\n\r\n5\r\nhello\r\n0\r\nX-Backend-Trailer: b\r\n\r\n' }
    if (r.line.includes('/p/close')) return { bytes: 'HTTP/1.0 200 OK\nContent-Type: text/plain\n\nclose-delimited\n', close: true }
    if (r.line.includes('/p/500')) return { bytes: 'HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\nbad\n' }
    return { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Type: text/plain\r\n\r\nsized\n' }
  })
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, pid, backend.port))
  t.after(async () => {
    nginx.kill('SIGKILL')
    await ours.close()
    await backend.close()
  })
  const req = (target: string, extra = '', method = 'GET', version = '1.1') =>
    `${method} ${target} HTTP/${version}\r\nHost: localhost\r\nConnection: close\r\n${extra}\r\n`
  const cases = [
    req('/t/a.txt'),
    req('/t/a.txt', '', 'GET', '1.0'),
    req('/t/a.txt', '', 'HEAD'),
    req('/t/a.txt', 'Range: bytes=0-3\r\n'),
    req('/t/a.txt', 'Range: bytes=0-3,8-9\r\n'),
    req('/t/a.txt', 'If-Modified-Since: Tue, 02 Jan 2024 03:04:05 GMT\r\n'),
    req('/t/big.bin'),
    req('/t/empty.txt'),
    req('/t/missing.txt'),
    req('/t/sub'),
    req('/inherit/a.txt'),
    req('/r/'),
    req('/r/', '', 'GET', '1.0'),
    req('/r404/'),
    req('/r302/'),
    req('/r204/'),
    req('/p/sized'),
    req('/p/chunked'),
    req('/p/close'),
    req('/p/500'),
    req('/mixed/'),
  ]
  const diffs: string[] = []
  for (const c of cases) {
    const [theirs, mine] = [await ask(theirAddr, c), await ask(ourAddr, c)]
    for (const k of ['head', 'body', 'trailer'] as const) {
      if (theirs[k] !== mine[k]) diffs.push(`${c.split('\r\n')[0]} ${k}\n  nginx: ${JSON.stringify(theirs[k])}\n  ours:  ${JSON.stringify(mine[k])}`)
    }
  }
  assert.deepEqual(diffs, [])
  // Not vacuous: the trailer is there, after a body whose length nginx no longer states.
  const r = await ask(ourAddr, req('/t/a.txt'))
  assert.match(r.trailer, /^X-Uri: \/t\/a\.txt\r\nX-Always: a 200\r\nX-Twice: 1\r\nX-Twice: 2\r\n\|after:0$/)
  assert.doesNotMatch(r.head, /Content-Length/)
})

test('add_trailer values nginx refuses are refused in its words', { skip: nginxMissing }, async () => {
  const dir = await makeFixtures()
  for (const line of ['add_trailer X;', 'add_trailer X a sometimes;', 'add_trailer X a always 1;', 'server { add_trailer X $nonexistent; }']) {
    await assertRefusedAsNginx(dir, line)
  }
})
