import assert from 'node:assert/strict'
import { mkdir, utimes, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import type { HostPort } from '@edgestack/common'
import { captureLogger, freePort, get, makeFixtures, nginxMissing, type RawResponse, rawRequest, startBoth, startOurs } from './helpers.js'
import { assertRefusedAsNginx, httpHead } from './nginx-test-conf.js'
import { startRawBackend } from './raw-backend.js'
import { backendParts, PAGES, REQUESTS } from './ssi-corpus.js'

function config(dir: string, port: number, pid: string, backend: number, dead: number): string {
  const root = join(dir, 'root')
  return `${httpHead(dir, port, pid)}
    limit_req_zone $server_name zone=one:1m rate=1r/m;
    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        root ${root};
        ssi on;
        ssi_min_file_chunk 2k;
        ssi_ignore_recycled_buffers off;
        location /star/ { alias ${root}/; ssi_types *; }
        location /typed/ { alias ${root}/; ssi_types text/plain; }
        location /silent/ { alias ${root}/; ssi_silent_errors on; }
        location /short/ { alias ${root}/; ssi_value_length 40; }
        location /off/ { alias ${root}/; ssi off; }
        location /lm/ { alias ${root}/; ssi_last_modified on; }
        location /gz/ { alias ${root}/; gzip on; gzip_min_length 1; }
        location /ep/ { error_page 404 /err404.shtml; }
        location = /ret { default_type text/html; return 200 '<!--# echo var="uri" --> returned'; }
        location = /r302 { return 302 /elsewhere; }
        location = /r200 { default_type text/html; return 200 'ret <!--# echo var="uri" -->'; }
        location /iff/ { alias ${root}/; ssi off; if ($arg_s) { ssi on; } }
        location ~ ^/cap/(.*)$ { alias ${root}/$1; }
        location /denied/ { deny all; alias ${root}/inc/; }
        location /limited/ { limit_req zone=one nodelay; limit_req_status 429; alias ${root}/inc/; }
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
    reason: r.reason,
    location: h('location')?.replace(/:\d+\//, ':PORT/'),
    // Our name in built-in pages is a documented difference (DIFFERENCES.md).
    body: body.toString('latin1').replaceAll('<hr><center>static-server</center>', '<hr><center>nginx</center>'),
  }
}

/** Pages an SSI test serves: the corpus, with the fixed mtime its ETags and Last-Modified come from. */
async function ssiFixtures(): Promise<string> {
  const dir = await makeFixtures()
  const t0 = new Date('2024-01-02T03:04:05Z')
  for (const [name, content] of Object.entries(PAGES)) {
    const file = join(dir, 'root', name)
    await mkdir(dirname(file), { recursive: true })
    await writeFile(file, content)
    await utimes(file, t0, t0)
  }
  return dir
}

/**
 * Responses one after another on one connection, as a client reads them: the head, then a
 * chunked body to its last chunk or a Content-Length body; what is left when the server closed.
 */
function splitResponses(raw: Buffer): { head: string; body: string }[] {
  const out: { head: string; body: string }[] = []
  let at = 0
  while (at < raw.length) {
    const end = raw.indexOf('\r\n\r\n', at)
    if (end < 0) {
      out.push({ head: 'INCOMPLETE', body: raw.subarray(at).toString('latin1') })
      break
    }
    const head = raw.subarray(at, end).toString('latin1')
    at = end + 4
    const framing = head
      .split('\r\n')
      // nginx's `Connection: keep-alive` on HTTP/1.1 is a documented difference (DIFFERENCES.md).
      .filter((l) => /^(HTTP\/|content-length:|transfer-encoding:|connection:)/i.test(l) && l !== 'Connection: keep-alive')
      .join('|')
    let body = ''
    if (/transfer-encoding: chunked/i.test(head)) {
      for (;;) {
        const nl = raw.indexOf('\r\n', at)
        if (nl < 0) break
        const n = Number.parseInt(raw.subarray(at, nl).toString('latin1'), 16)
        at = nl + 2 + n + 2
        if (!n) break
        body += raw.subarray(nl + 2, nl + 2 + n).toString('latin1')
      }
    } else {
      const m = /content-length: (\d+)/i.exec(head)
      const n = m ? Number(m[1]) : 0
      body = raw.subarray(at, at + n).toString('latin1')
      at += n
    }
    out.push({ head: framing, body: body.replaceAll('<hr><center>static-server</center>', '<hr><center>nginx</center>') })
  }
  return out
}

test('differential: SSI pages (commands, errors, includes, proxied and streamed bodies) answered byte for byte as nginx answers them', { skip: nginxMissing }, async (t) => {
  const dir = await ssiFixtures()
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

  // Framing on one connection: pipelined answers of every kind the filter makes (a file, a
  // streamed backend body, a built-in page, HEAD, an include loop, a page nginx cuts short)
  // delimited as nginx delimits them, read back to back from the same bytes.
  const pipeline = ['/echo.shtml?p=1', '/be/split', '/missing.html', '/sub', '/plain.html', '/self.shtml', '/include-proxy.shtml']
  let bytes = ''
  for (const p of pipeline) bytes += `GET ${p} HTTP/1.1\r\nHost: localhost\r\n\r\n`
  bytes += 'HEAD /echo.shtml HTTP/1.1\r\nHost: localhost\r\n\r\nGET /set-limit.shtml HTTP/1.1\r\nHost: localhost\r\n\r\n'
  const theirs = splitResponses(await rawRequest(theirAddr, bytes))
  const mine = splitResponses(await rawRequest(ourAddr, bytes))
  assert.equal(theirs.length, pipeline.length + 2)
  assert.deepEqual(mine, theirs)

  // HTTP/1.0: no length to give, so the body ends with the connection.
  const close = (raw: Buffer) => {
    const end = raw.indexOf('\r\n\r\n')
    const head = raw.subarray(0, end).toString('latin1')
    return { framed: /content-length|transfer-encoding/i.test(head), line: head.split('\r\n')[0], body: raw.subarray(end + 4).toString('latin1') }
  }
  for (const p of ['/echo.shtml', '/be/split']) {
    const req = `GET ${p} HTTP/1.0\r\nHost: localhost\r\n\r\n`
    assert.deepEqual(close(await rawRequest(ourAddr, req)), close(await rawRequest(theirAddr, req)), p)
  }
})

test('differential: the SSI directives nginx refuses are refused in its words; ssi_ignore_recycled_buffers on is refused in one line', { skip: nginxMissing }, async () => {
  const dir = await ssiFixtures()
  await mkdir(join(dir, 'tmp'), { recursive: true })
  for (const line of [
    'ssi maybe;',
    'ssi on off;',
    'ssi_types;',
    'ssi_value_length big;',
    'ssi_min_file_chunk -1;',
    'ssi_silent_errors yes;',
    'ssi_last_modified 1;',
    'ssi_ignore_recycled_buffers sometimes;',
    'server { listen 127.0.0.1:1; if ($uri) { ssi_types text/plain; } }',
    'ssi on; ssi off;',
  ]) {
    await assertRefusedAsNginx(dir, line)
  }
  const file = join(dir, 'recycled.conf')
  await writeFile(file, `${httpHead(dir, 1, join(dir, 'x.pid'))}\n    ssi_ignore_recycled_buffers on;\n}\n`)
  await assert.rejects(startOurs(dir, file), /"ssi_ignore_recycled_buffers on" is not supported by static-server: .* in \S+recycled\.conf:16$/)
})

test('a page that fans out (includes itself twice) stops at 1000 subrequests with the error text, and another client is served meanwhile', async (t) => {
  const dir = await ssiFixtures()
  await writeFile(join(dir, 'root', 'fan.shtml'), 'f<!--# include virtual="/fan.shtml" --><!--# include virtual="/fan.shtml" -->')
  const port = await freePort()
  await writeFile(join(dir, 'ours.conf'), `${httpHead(dir, port, join(dir, 'o.pid'))}\n server { listen 127.0.0.1:${port}; root ${dir}/root; ssi on; }\n}\n`)
  const { logger, lines } = captureLogger()
  const o = await startOurs(dir, join(dir, 'ours.conf'), logger)
  t.after(() => o.server.close())
  const addr = o.addr[0] as HostPort
  let fanDone = false
  const fan = get(addr, '/fan.shtml').then((r) => {
    fanDone = true
    return r
  })
  const other = await get(addr, '/plain.html')
  assert.equal(other.status, 200)
  // The other client's answer came while the fan-out was still being assembled: it did not
  // wait for the thousand subrequests.
  assert.equal(fanDone, false, 'the plain page was answered only after the fan-out')
  const r = await fan
  assert.equal(r.status, 200)
  const body = r.body.toString()
  // Every subrequest is one `f`, and the page itself one more.
  assert.equal(body.split('f').length - 1, 1001)
  assert.ok(body.includes('[an error occurred while processing the directive]'))
  assert.ok(lines.some((l) => l.includes('request reference counter overflow while processing "/fan.shtml"')))
})

test('an include streams into the page as its backend writes, and a client leaving ends the backend request', async (t) => {
  const dir = await ssiFixtures()
  let backendClosed = false
  let answered = () => {}
  const answeredOnce = new Promise<void>((r) => {
    answered = r
  })
  const be = net.createServer((s) => {
    s.on('error', () => {})
    s.on('close', () => {
      backendClosed = true
    })
    // The head and a first piece of the body, then nothing: the include stays in flight.
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nslow start ')
      answered()
    })
  })
  await new Promise<void>((r) => be.listen(0, '127.0.0.1', () => r()))
  t.after(() => be.close())
  await writeFile(join(dir, 'root', 'slow.shtml'), 'before <!--# include virtual="/be/slow" --> after\n')
  const port = await freePort()
  const bePort = (be.address() as net.AddressInfo).port
  await writeFile(
    join(dir, 'ours.conf'),
    `${httpHead(dir, port, join(dir, 'o.pid'))}\n server { listen 127.0.0.1:${port}; root ${dir}/root; ssi on; location /be/ { proxy_pass http://127.0.0.1:${bePort}/; } }\n}\n`,
  )
  const o = await startOurs(dir, join(dir, 'ours.conf'))
  t.after(() => o.server.close())
  const c = net.connect(port, '127.0.0.1')
  t.after(() => c.destroy())
  let got = ''
  const streamed = new Promise<void>((r) =>
    c.on('data', (d: Buffer) => {
      got += d.toString('latin1')
      if (got.includes('slow start')) r()
    }),
  )
  c.write('GET /slow.shtml HTTP/1.1\r\nHost: localhost\r\n\r\n')
  await answeredOnce
  await streamed
  assert.match(got, /Transfer-Encoding: chunked\r\n(?:[^\r]*\r\n)*\r\n7\r\nbefore \r\nb\r\nslow start \r\n$/)
  c.destroy()
  for (let i = 0; i < 200 && !backendClosed; i++) await new Promise((r) => setTimeout(r, 25))
  assert.ok(backendClosed, 'the backend connection is closed once the client left')
  assert.equal((await get(o.addr[0] as HostPort, '/echo.shtml')).status, 200)
})

test('an empty errmsg: the page goes on without an error text (nginx 1.22 closes the connection with no answer)', async (t) => {
  const dir = await ssiFixtures()
  await writeFile(join(dir, 'root', 'empty-errmsg.shtml'), 'a<!--# config errmsg="" --><!--# bogus -->b\n')
  const port = await freePort()
  await writeFile(join(dir, 'ours.conf'), `${httpHead(dir, port, join(dir, 'o.pid'))}\n server { listen 127.0.0.1:${port}; root ${dir}/root; ssi on; }\n}\n`)
  const { logger, lines } = captureLogger()
  const o = await startOurs(dir, join(dir, 'ours.conf'), logger)
  t.after(() => o.server.close())
  const r = await get(o.addr[0] as HostPort, '/empty-errmsg.shtml')
  assert.equal(r.status, 200)
  assert.equal(r.body.toString(), 'ab\n')
  assert.ok(lines.some((l) => l.includes('invalid SSI command: "bogus"')), lines.join('\n'))
})
