import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { hasNginx, makeFixtures, NGINX, rawRequest, startBoth } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'

/**
 * What the differential corpus cannot see, since it sends one request per connection: several
 * requests pipelined on one connection, and which answer ends it. Each case's last request
 * asks for `Connection: close`, so both programs close and nothing waits on a timer; an answer
 * that closed the connection early shows as the answers that never came.
 */
function config(dir: string, port: number, pid: string): string {
  return `${httpHead(dir, port, pid)}
    keepalive_requests 3;
    server {
        listen 127.0.0.1:${port} default_server;
        server_name localhost;
        root ${dir}/root;
        location /k0/ { keepalive_timeout 0; alias ${dir}/root/; }
        location /k1/ { keepalive_requests 1; alias ${dir}/root/; }
        location /kh/ { keepalive_timeout 75s 2m; alias ${dir}/root/; }
        location /kh0/ { keepalive_timeout 75s 0; alias ${dir}/root/; }
        location /sn/ { server_name_in_redirect on; alias ${dir}/root/; }
        location /r301 { return 301; }
        location /r302 { return 302 "text"; }
        location /r200 { return 200; }
        location /r204 { return 204 "dropped"; }
        location /r399 { return 399 "odd\n"; }
        location /r418 { return 418; }
        location /r503 { return 503; }
        location /r504 { return 504 "late\n"; }
        location /em/ { expires modified 1h; charset utf-8; alias ${dir}/root/; }
    }
    server {
        listen 127.0.0.1:${port};
        server_name "" empty.test;
        root ${dir}/root;
        location / { return 200 "empty name\n"; }
        location /sub/ { }
    }
    server {
        listen 127.0.0.1:${port};
        server_name vhost.test;
        location / { return 200 "vhost host=$host http_host=$http_host uri=$uri args=$args\\n"; }
    }
}
`
}

const req = (target: string, extra = '', method = 'GET') => `${method} ${target} HTTP/1.1\r\nHost: localhost\r\n${extra}\r\n`
const last = (target: string, extra = '') => req(target, `${extra}Connection: close\r\n`)

const CASES: [name: string, wire: string][] = [
  ['keepalive_requests 3: the third answer closes', req('/a.txt') + req('/empty.txt') + req('/data.json') + last('/a.txt')],
  ['a location with keepalive_requests 1 closes after its answer', req('/a.txt') + req('/k1/a.txt') + last('/a.txt')],
  ['keepalive_timeout 0 closes after the answer', req('/k0/a.txt') + last('/a.txt')],
  ['keepalive_timeout T H: Keep-Alive: timeout=H where the connection is kept, none for H 0', req('/kh/a.txt') + req('/kh/missing') + req('/kh0/a.txt') + last('/kh/a.txt')],
  ['keepalive_timeout T H to an HTTP/1.0 keep-alive client', `GET /kh/a.txt HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n${last('/a.txt')}`],
  ['HTTP/1.0 with both keep-alive and close: close wins', `GET /a.txt HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive, close\r\n\r\n${last('/a.txt')}`],
  ['HTTP/1.0 keep-alive', `GET /a.txt HTTP/1.0\r\nHost: localhost\r\nConnection: Keep-Alive\r\n\r\n${last('/a.txt')}`],
  ['HTTP/1.0 keep-alive into keepalive_timeout 0', 'GET /k0/a.txt HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n'],
  ['TRACE is a 405 that closes', req('/a.txt', '', 'TRACE') + last('/a.txt')],
  ['CONNECT to a path is a 405 that closes', req('/a.txt', '', 'CONNECT') + last('/a.txt')],
  ['a lower-case method is a 400', req('/a.txt', '', 'get') + last('/a.txt')],
  ['a method with a digit is a 400', req('/a.txt', '', 'G3T') + last('/a.txt')],
  ['an unknown method of A-Z, _ and - is a 405 that keeps the connection', req('/a.txt', '', 'M-SEARCH_X') + last('/a.txt')],
  ['absolute-form: its host picks the server over Host', last('http://vhost.test/x?a=1')],
  ['absolute-form: any scheme, port, upper case, no path', last('h2c://VHOST.test:81')],
  ['absolute-form: only a query', last('http://vhost.test?q')],
  ['absolute-form: userinfo is a 400', last('http://user@vhost.test/x')],
  ['absolute-form: an empty host is a 400', last('http:///a.txt')],
  ['absolute-form: an invalid Host field is still a 400', 'GET http://vhost.test/x HTTP/1.1\r\nHost: a/b\r\n\r\n'],
  ['absolute-form: directory redirect to the target host', last('http://localhost/sub')],
  ['redirect without Host names the local address', 'GET /sub HTTP/1.0\r\n\r\n'],
  ['server_name "" takes the requests without Host', 'GET /a.txt HTTP/1.0\r\n\r\n'],
  ['expires modified (past: no-cache) and charset on a file, a 404 page, not on a 301', req('/em/a.txt') + req('/em/missing') + last('/em/sub')],
  ['status lines and fields of return', req('/r301') + req('/r302') + req('/r200') + req('/r204') + req('/r399') + req('/r418') + req('/r503') + last('/r504')],
  ['server_name_in_redirect on', last('/sn/sub', 'X: y\r\n').replace('Host: localhost', 'Host: other.test:99')],
]

/** Each answer on the connection as its status line, its Connection and Keep-Alive fields, the others a client acts on, and body. */
function answers(raw: Buffer, port: number): string[] {
  const out: string[] = []
  let at = 0
  while (at < raw.length) {
    const end = raw.indexOf('\r\n\r\n', at)
    if (end < 0) {
      out.push(`junk ${raw.subarray(at).toString('latin1')}`)
      break
    }
    const head = raw.subarray(at, end).toString('latin1')
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0)
    const body = raw
      .subarray(end + 4, end + 4 + length)
      .toString('latin1')
      .replace('<hr><center>nginx</center>', '<hr><center>static-server</center>')
    const field = (name: string) => new RegExp(`\r\n${name}: (.*)`, 'i').exec(head)?.[1] ?? '-'
    const fields = ['connection', 'keep-alive', 'location', 'content-type', 'expires', 'cache-control'].map((f) => `${f}=${field(f).replaceAll(String(port), 'PORT')}`)
    out.push(`${head.slice(0, head.indexOf('\r\n'))} ${fields.join(' ')} ${body}`)
    at = end + 4 + length
  }
  return out
}

test('differential: pipelined requests, and which answer closes the connection, as nginx', { skip: hasNginx ? false : `${NGINX} is not installed` }, async (t) => {
  const dir = await makeFixtures()
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, pid))
  t.after(async () => {
    nginx.kill('SIGTERM')
    await ours.close({ drainTimeoutMs: 100 })
  })
  const view = async (addr: HostPort, wire: string) => answers(await rawRequest(addr, wire), addr.port)
  const failures: string[] = []
  for (const [name, wire] of CASES) {
    const [a, b] = await Promise.all([view(ourAddr, wire), view(theirAddr, wire)])
    if (JSON.stringify(a) !== JSON.stringify(b)) failures.push(`${name}\n  ours  ${JSON.stringify(a)}\n  nginx ${JSON.stringify(b)}`)
  }
  assert.deepEqual(failures, [], `${failures.length} of ${CASES.length} differ:\n${failures.join('\n')}`)
})
