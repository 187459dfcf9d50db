import assert from 'node:assert/strict'
import { open } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { makeFixtures, nginxMissing, startBoth, startEcho } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'

/**
 * client_body_timeout and send_timeout from a location, under both programs: a body that
 * stops arriving ends the request without an answer (nginx terminates it with 408), an
 * answer the client stops reading is cut off. The server-wide defaults (60 s) are far above
 * what these clients wait, so a connection closed by the server here is the location's timeout.
 */
function config(dir: string, port: number, up: number, pid: string): string {
  return `${httpHead(dir, port, pid)}
    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        root ${dir}/root;
        location /slow-body/ { client_body_timeout 1s; proxy_pass http://127.0.0.1:${up}; }
        location /body/ { proxy_pass http://127.0.0.1:${up}; }
        location /stalled/ { send_timeout 1s; alias ${dir}/root/; }
        location /patient/ { alias ${dir}/root/; }
    }
}
`
}

/** Sends a head and part of a body, then waits; what came back, and whether the server closed first. */
function partialBody(addr: HostPort, path: string, waitMs: number): Promise<{ bytes: number; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(addr.port, addr.host)
    let bytes = 0
    let done = false
    const finish = (closedByServer: boolean) => {
      if (done) return
      done = true
      s.destroy()
      resolve({ bytes, closedByServer })
    }
    s.on('data', (c: Buffer) => {
      bytes += c.length
    })
    s.on('end', () => finish(true))
    s.on('error', () => finish(true))
    s.setTimeout(waitMs, () => finish(false))
    s.write(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nabc`)
  })
}

/** Asks for a large file, reads nothing for `pauseMs`, then reads what is left. */
function stalledRead(addr: HostPort, path: string, pauseMs: number, waitMs: number): Promise<{ bytes: number }> {
  return new Promise((resolve) => {
    const s = net.connect(addr.port, addr.host)
    let bytes = 0
    s.pause()
    const done = () => {
      s.destroy()
      resolve({ bytes })
    }
    s.on('data', (c: Buffer) => {
      bytes += c.length
    })
    s.on('close', done)
    s.on('error', () => {})
    s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
    setTimeout(() => s.resume(), pauseMs)
    setTimeout(done, waitMs).unref()
  })
}

test('differential: client_body_timeout and send_timeout of a location, as in nginx', { skip: nginxMissing }, async (t) => {
  const dir = await makeFixtures()
  // Larger than the socket buffers on both ends, and than what static-server keeps in memory.
  const fh = await open(join(dir, 'root/huge.bin'), 'w')
  const chunk = Buffer.alloc(1 << 20, 0x61)
  for (let i = 0; i < 48; i++) await fh.write(chunk)
  await fh.close()
  const echo = await startEcho()
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, echo.port, pid))
  t.after(async () => {
    nginx.kill('SIGKILL')
    await ours.close({ drainTimeoutMs: 0 })
    await echo.close()
  })
  const size = 48 << 20
  const results: Record<string, unknown> = {}
  for (const [name, addr] of [
    ['nginx', theirAddr],
    ['ours', ourAddr],
  ] as const) {
    const slow = await partialBody(addr, '/slow-body/x', 6000)
    const patient = await partialBody(addr, '/body/x', 3500)
    const stalled = await stalledRead(addr, '/stalled/huge.bin', 4000, 15_000)
    const reading = await stalledRead(addr, '/patient/huge.bin', 4000, 15_000)
    results[name] = {
      slowBody: slow,
      patientBody: patient,
      stalledComplete: stalled.bytes > size,
      patientComplete: reading.bytes > size,
    }
  }
  const expected = {
    // Terminated: closed, no answer at all.
    slowBody: { bytes: 0, closedByServer: true },
    patientBody: { bytes: 0, closedByServer: false },
    stalledComplete: false,
    patientComplete: true,
  }
  assert.deepEqual(results, { nginx: expected, ours: expected })
})
