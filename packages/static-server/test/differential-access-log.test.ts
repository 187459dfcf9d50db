import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { hasNginx, makeFixtures, NGINX, rawRequest, startBoth, startEcho } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'

/**
 * `$bytes_sent` and `$body_bytes_sent` under nginx and under us, one pipelined connection each.
 * nginx's are what went to the socket for that request (status line, fields, body and chunk
 * framing; the body one without the head), so the oracle is the bytes the client received:
 * both programs must log exactly the wire length of every answer.
 */
function config(dir: string, port: number, up: number, pid: string): string {
  return `${httpHead(dir, port, pid)}
    log_format sizes '$request_method $request_uri $status $bytes_sent $body_bytes_sent';
    server {
        listen 127.0.0.1:${port};
        root ${dir}/root;
        access_log ${dir}/sizes-${port}.log sizes;
        location /plain/ { autoindex on; }
        location /raw/ { proxy_pass http://127.0.0.1:${up}; }
        location /ret/ { return 200 "text\\n"; }
    }
}
`
}

const REQUESTS: [method: string, path: string, extra?: string, body?: string][] = [
  ['GET', '/a.txt'],
  ['GET', '/big.bin'],
  ['GET', '/missing'],
  ['GET', '/plain/'],
  ['GET', '/raw/x'],
  ['GET', '/sub'],
  ['GET', '/ret/'],
  ['GET', '/a.txt?range', 'Range: bytes=0-1,4-5\r\n'],
  ['GET', '/a.txt?304', 'If-None-Match: *\r\n'],
  ['HEAD', '/a.txt'],
  // The interim 100 Continue is bytes sent for the request too.
  ['POST', '/raw/e', 'Expect: 100-continue\r\nContent-Length: 3\r\n', 'abc'],
  ['GET', '/a.txt'],
]

/** The wire length, final head length and any interim 100 of each answer, in order. */
function split(raw: Buffer, methods: string[]): { wire: number; head: number; interim: boolean }[] {
  const out: { wire: number; head: number; interim: boolean }[] = []
  let at = 0
  for (const method of methods) {
    let end = raw.indexOf('\r\n\r\n', at)
    assert.ok(end > 0, `answer ${out.length + 1} is missing`)
    let headStart = at
    let head = raw.subarray(at, end + 4).toString('latin1')
    if (head.startsWith('HTTP/1.1 100 ')) {
      // nginx's $body_bytes_sent is c->sent less the final head: the 100 Continue is in it.
      headStart = end + 4
      end = raw.indexOf('\r\n\r\n', headStart)
      head = raw.subarray(headStart, end + 4).toString('latin1')
    }
    const status = Number(head.slice(9, 12))
    let next = end + 4
    const length = /\r\ncontent-length: (\d+)/i.exec(head)
    if (method === 'HEAD' || status === 304) {
      // no body
    } else if (/\r\ntransfer-encoding: chunked/i.test(head)) {
      for (;;) {
        const nl = raw.indexOf('\r\n', next)
        const size = Number.parseInt(raw.subarray(next, nl).toString(), 16)
        next = nl + 2 + size + 2
        if (size === 0) break
      }
    } else if (length) next += Number(length[1])
    out.push({ wire: next - at, head: end + 4 - headStart, interim: headStart !== at })
    at = next
  }
  assert.equal(at, raw.length, 'bytes after the last answer')
  return out
}

test('differential: $bytes_sent and $body_bytes_sent are the bytes each client received, as in nginx', { skip: hasNginx ? false : `${NGINX} is not installed` }, async (t) => {
  const dir = await makeFixtures()
  const echo = await startEcho()
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, echo.port, pid))
  t.after(async () => {
    nginx.kill('SIGTERM')
    await ours.close({ drainTimeoutMs: 100 })
    await echo.close()
  })
  let wire = ''
  for (const [m, p, extra, body] of REQUESTS) wire += `${m} ${p} HTTP/1.1\r\nHost: localhost\r\n${extra ?? ''}\r\n${body ?? ''}`
  wire = wire.replace(/\r\n\r\n$/, '\r\nConnection: close\r\n\r\n')
  const theirs = await rawRequest(theirAddr, wire)
  const mine = await rawRequest(ourAddr, wire)
  // Our log is written once the server closes (close() is idempotent); nginx's lines are out
  // before its connection closes.
  await ours.close({ drainTimeoutMs: 100 })
  const methods = REQUESTS.map((r) => r[0])
  const check = async (who: string, port: number, raw: Buffer) => {
    const lines = (await readFile(join(dir, `sizes-${port}.log`), 'utf8')).trim().split('\n')
    const sizes = split(raw, methods)
    assert.equal(lines.length, REQUESTS.length, `${who}: ${lines.join(' | ')}`)
    return lines.map((l, i) => {
      const [method, uri, status, bytes, body] = l.split(' ')
      const s = sizes[i] as { wire: number; head: number; interim: boolean }
      assert.deepEqual([bytes, body], [String(s.wire), String(s.wire - s.head)], `${who}: ${l}`)
      return `${method} ${uri} ${status}${s.interim ? ' after 100 Continue' : ''}`
    })
  }
  const theirLines = await check('nginx', theirAddr.port, theirs)
  const ourLines = await check('static-server', ourAddr.port, mine)
  assert.deepEqual(ourLines, theirLines)
})
