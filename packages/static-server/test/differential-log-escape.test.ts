import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { makeFixtures, nginxMissing, parseResponse, rawRequest, startBoth, startEcho } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'

/**
 * Access-log escaping under both programs: the same hostile requests, three log formats
 * (`escape=default`, `json`, `none`), lines compared byte for byte wherever both programs
 * answered with the same status, refused requests (400, 501) included: nginx logs those with
 * the request line as far as it read it and the fields it read before the bad one.
 */
function config(dir: string, port: number, up: number, pid: string): string {
  return `${httpHead(dir, port, pid)}
    client_header_timeout 1s;
    log_format d '"$request" $status "$http_x" "$uri" "$args" "$http_user_agent" "$request_method"';
    log_format j escape=json '{"r":"$request","s":$status,"x":"$http_x","u":"$uri","m":"$request_method","e":"$http_empty"}';
    log_format n escape=none '"$request" $status "$http_x" "$uri" "$http_empty"';
    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        root ${dir}/root;
        access_log ${dir}/d-${port}.log d;
        access_log ${dir}/j-${port}.log j;
        access_log ${dir}/n-${port}.log n;
        location /p/ { client_body_timeout 1s; proxy_pass http://127.0.0.1:${up}; }
    }
}
`
}

const close = 'Connection: close\r\n\r\n'
const REQUESTS = [
  `GET /a.txt?q="x\\\\y HTTP/1.1\r\nHost: a\r\nX: quote" back\\\\ tab\there\r\n${close}`,
  `GET /caf%C3%A9?%22 HTTP/1.1\r\nHost: a\r\nX: \xe9\xff\x7f\r\n${close}`,
  `GET /a.txt HTTP/1.1\r\nHost: a\r\nUser-Agent: {"json": "\\u0000"}\r\n${close}`,
  `GET /a.txt HTTP/1.1\r\nHost: a\r\nX: nul\x00byte\r\n${close}`,
  `GET /a\x01b HTTP/1.1\r\nHost: a\r\n${close}`,
  `G@T /a.txt HTTP/1.1\r\nHost: a\r\n${close}`,
  '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03abc\r\n\r\n',
  `GET /a.txt HTTP/1.1\r\nHost: a\r\nX: one\r\nBad Header: two\r\n${close}`,
  `GET /a.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n${close}`,
  `GET /a.txt HTTP/1.1\r\nX: nohost\r\n${close}`,
  `GET /a.txt HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n${close}`,
  `GET /a.txt HTTP/1.1\r\nHost: a\r\nX: cr\rhere\r\n${close}`,
  `GET /a.txt HTTP/1.1\r\nHost: a\r\nX: ctl\x01\x1bbyte\r\n${close}`,
  `GET /\xe9t\xe9 HTTP/1.1\r\nHost: a\r\n${close}`,
  `GET /missing%0d%0aInjected: yes HTTP/1.1\r\nHost: a\r\n${close}`,
  // Cut short by client_header_timeout and client_body_timeout: logged as 408 with what came.
  'GET /a.t',
  'GET /a.txt HTTP/1.1\r\nHost: a\r\nX: partial',
  'POST /p/x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc',
]

async function lines(path: string): Promise<Buffer[]> {
  const all = await readFile(path)
  const out: Buffer[] = []
  let at = 0
  for (let nl = all.indexOf(10); nl !== -1; nl = all.indexOf(10, at)) {
    out.push(all.subarray(at, nl))
    at = nl + 1
  }
  return out
}

test('differential: access-log lines escaped as nginx escapes them, refused requests logged as nginx logs them', { skip: nginxMissing }, async (t) => {
  const dir = await makeFixtures()
  const echo = await startEcho()
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, echo.port, pid))
  let closed = false
  t.after(async () => {
    nginx.kill('SIGKILL')
    if (!closed) await ours.close({ drainTimeoutMs: 0 })
    await echo.close()
  })
  const statuses: [number, number][] = []
  for (const r of REQUESTS) {
    const a = parseResponse(await rawRequest(theirAddr, Buffer.from(r, 'latin1')))
    const b = parseResponse(await rawRequest(ourAddr, Buffer.from(r, 'latin1')))
    statuses.push([a.status, b.status])
  }
  // close() writes every gathered line; nginx writes each line as its request ends.
  await ours.close({ drainTimeoutMs: 0 })
  closed = true
  const problems: string[] = []
  let same = 0
  let refusedSame = 0
  for (const f of ['d', 'j', 'n']) {
    const theirs = await lines(join(dir, `${f}-${theirAddr.port}.log`))
    const mine = await lines(join(dir, `${f}-${ourAddr.port}.log`))
    assert.equal(theirs.length, REQUESTS.length, `nginx ${f} lines`)
    assert.equal(mine.length, REQUESTS.length, `our ${f} lines`)
    REQUESTS.forEach((r, i) => {
      const [sa, sb] = statuses[i] as [number, number]
      const a = theirs[i] as Buffer
      const b = mine[i] as Buffer
      if (sa === sb) {
        if (!a.equals(b)) problems.push(`${f} ${JSON.stringify(r.slice(0, 40))}:\n  nginx: ${a.toString('latin1')}\n  ours:  ${b.toString('latin1')}`)
        else if (f === 'd') {
          same++
          if (sa >= 400 && sa !== 404) refusedSame++
        }
      } else if (f !== 'n' && (f === 'd' ? /[\x00-\x1f\x7f]/ : /[\x00-\x1f]/).test(b.toString('latin1'))) {
        // Where we refuse what nginx serves, our line still has no raw control byte (JSON
        // escaping leaves DEL as it is, in nginx too).
        problems.push(`${f} ${JSON.stringify(r.slice(0, 40))}: a raw control byte in ${JSON.stringify(b.toString('latin1'))}`)
      }
    })
  }
  t.diagnostic(`statuses (nginx, ours): ${JSON.stringify(statuses)}; ${same} lines equal, ${refusedSame} of them refusals`)
  assert.deepEqual(problems, [])
  assert.ok(same >= 13 && refusedSame >= 8, `${same} equal lines, ${refusedSame} refusals`)
})
