import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import { freePort, get, makeFixtures, parseResponse, rawRequest, startEcho, startOurs } from './helpers.js'

/**
 * Directives with an effect of their own that no other test exercises: each one set, and the
 * answer it changes. (The directive-support walk requires a behavioural test for each.)
 */
test('absolute_redirect, port_in_redirect, real_ip_recursive, keepalive_time, proxy_next_upstream', async (t) => {
  const dir = await makeFixtures()
  const echo = await startEcho()
  const dead = await freePort()
  const conf = join(dir, 'directives.conf')
  await writeFile(
    conf,
    `events {}
http {
    access_log off;
    upstream two { server 127.0.0.1:${dead}; server 127.0.0.1:${echo.port}; }
    server {
        listen 127.0.0.1:0;
        server_name localhost;
        root ${dir}/root;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        real_ip_recursive on;
        location /rel/ { absolute_redirect off; alias ${dir}/root/; }
        location /noport/ { port_in_redirect off; alias ${dir}/root/; }
        location /ip/ { return 200 "$remote_addr\\n"; }
        location /aged/ { keepalive_time 1ms; return 200 "ok\\n"; }
        location /once/ { proxy_next_upstream off; proxy_pass http://two; }
    }
}
`,
  )
  const { addr, server } = await startOurs(dir, conf)
  t.after(async () => {
    await server.close({ drainTimeoutMs: 0 })
    await echo.close()
  })
  const a = addr[0] as { host: string; port: number }
  assert.equal((await get(a, '/rel/sub')).headers.get('location'), '/rel/sub/')
  assert.equal((await get(a, '/noport/sub')).headers.get('location'), 'http://localhost/noport/sub/')
  assert.equal((await get(a, '/sub')).headers.get('location'), `http://localhost:${a.port}/sub/`)
  // Recursive: the trusted 127.0.0.1 at the end is skipped (without it, it would be the answer).
  assert.equal((await get(a, '/ip/', { 'X-Forwarded-For': '203.0.113.9, 127.0.0.1' })).body.toString(), '203.0.113.9\n')
  // keepalive_time: a request on a connection older than it is answered with Connection: close
  // and the connection is closed. Each request here is written once its connection is 20 ms
  // old, so /aged/ (1ms) is past its time whatever the load; /ip/ (the default 1h) is not.
  const onAgedConnection = (path: string) =>
    new Promise<string>((resolve) => {
      const s = net.connect(a.port, a.host)
      let got = ''
      s.on('connect', () => setTimeout(() => s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`), 20))
      s.on('data', (c: Buffer) => {
        got += c.toString()
        if (/\r\n\r\n[\s\S]*\n$/.test(got)) s.end()
      })
      s.on('close', () => resolve(got))
      s.setTimeout(5000, () => s.destroy())
    })
  assert.match(await onAgedConnection('/aged/'), /^HTTP\/1\.1 200 [\s\S]*\r\nConnection: close\r\n/i)
  assert.match(await onAgedConnection('/ip/'), /^HTTP\/1\.1 200 [\s\S]*\r\nConnection: keep-alive\r\n/i)
  // proxy_next_upstream off: the dead first peer's error is the answer; nothing is retried.
  assert.equal((await get(a, '/once/x')).status, 502)
})

test('proxy_connect_timeout: a backend that never completes the connection is a 504 after it', async (t) => {
  // A listener whose process never runs its event loop again: past the backlog, connects hang.
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const s = require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
        console.log(s.address().port)
        setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30000), 50)
      })`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  t.after(() => child.kill('SIGKILL'))
  const port = await new Promise<number>((resolve) => child.stdout?.once('data', (c: Buffer) => resolve(Number(c.toString().trim()))))
  await new Promise((r) => setTimeout(r, 200))
  const fillers: net.Socket[] = []
  for (let i = 0; i < 8; i++) fillers.push(net.connect(port, '127.0.0.1').on('error', () => {}))
  t.after(() => {
    for (const f of fillers) f.destroy()
  })
  const dir = await makeFixtures()
  const conf = join(dir, 'connect.conf')
  await writeFile(
    conf,
    `events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:0;
        proxy_connect_timeout 1s;
        location / { proxy_pass http://127.0.0.1:${port}; }
    }
}
`,
  )
  const { addr, server } = await startOurs(dir, conf)
  t.after(() => server.close({ drainTimeoutMs: 0 }))
  const r = parseResponse(await rawRequest(addr[0] as { host: string; port: number }, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))
  assert.equal(r.status, 504)
})
