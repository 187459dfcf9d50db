import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import { listeningPort, makeFixtures, REPO } from './helpers.js'

const CLI = join(REPO, 'packages/static-server/dist/src/cli.js')

/** Opens a connection and reports whether the server closed it without a byte (true) or kept it. */
function probe(port: number): Promise<{ socket: net.Socket; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.on('error', () => {})
    // The server closes a connection past its limit at once; one it keeps stays open.
    const timer = setTimeout(() => resolve({ socket, closed: false }), 200)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ socket, closed: true })
    })
  })
}

async function start(dir: string, workerConnections: number, ulimit?: number) {
  const conf = join(dir, `limit-${workerConnections}.conf`)
  await writeFile(
    conf,
    `pid off;\nerror_log stderr;\nevents { worker_connections ${workerConnections}; }\nhttp {\n    access_log off;\n    server {\n        listen 127.0.0.1:0;\n        root ${dir}/root;\n    }\n}\n`,
  )
  const cmd = `${ulimit ? `ulimit -n ${ulimit} && ` : ''}exec "${process.execPath}" "${CLI}" -p "${dir}" -c "${conf}"`
  const child = spawn('/bin/sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  // The logger writes its lines to stdout or stderr by level: both are read.
  const gather = (c: Buffer) => {
    log += c.toString()
  }
  child.stdout?.on('data', gather)
  child.stderr?.on('data', gather)
  const port = await listeningPort(child)
  return { child, port, log: () => log }
}

/**
 * nginx's worker_connections, and the descriptor limit under it. At the limit the oldest idle
 * connections (waiting for a request) are closed to make room, as nginx's
 * ngx_drain_connections does (`N worker_connections are not enough, reusing connections`);
 * when every held connection is busy (here: a request head under way), a new one is closed at
 * once (`N worker_connections are not enough`). Each line at most once a second; held busy
 * connections are still served.
 */
for (const [name, workerConnections, ulimit, expected] of [
  ['worker_connections 6', 6, undefined, 6],
  // (96 - 32 reserved) / 2: two descriptors a client.
  ['a descriptor limit of 96 under worker_connections 512', 512, 96, 32],
] as const) {
  test(`connection limit: ${name}`, async (t) => {
    const dir = await makeFixtures()
    const { child, port, log } = await start(dir, workerConnections, ulimit)
    const held: net.Socket[] = []
    t.after(() => {
      for (const s of held) s.destroy()
      child.kill('SIGKILL')
    })
    // Idle connections fill the limit; newer ones take the place of the oldest.
    for (let i = 0; i < expected + 3; i++) {
      const p = await probe(port)
      held.push(p.socket)
      assert.equal(p.closed, false, `connection ${i + 1} was closed`)
    }
    const closedByServer = await Promise.all(held.map((s) => new Promise<boolean>((r) => (s.closed ? r(true) : setTimeout(() => r(s.closed), 50)))))
    assert.deepEqual(closedByServer.slice(0, 3), [true, true, true], 'the three oldest idle connections made room')
    assert.ok(log().includes(`${expected} worker_connections are not enough, reusing connections`), log())
    for (const s of held.splice(0)) s.destroy()
    await new Promise((r) => setTimeout(r, 200))
    // Busy connections (a request head under way) are not closed: a new one is refused.
    for (let i = 0; i < expected; i++) {
      const p = await probe(port)
      p.socket.write('GET /a.txt HTTP/1.1\r\nHost: localhost\r\n')
      held.push(p.socket)
      assert.equal(p.closed, false, `busy connection ${i + 1} was closed`)
    }
    const started = Date.now()
    for (let i = 0; i < 4; i++) {
      const p = await probe(port)
      p.socket.destroy()
      assert.equal(p.closed, true, `a connection past ${expected} busy ones was kept`)
    }
    const seconds = Math.ceil((Date.now() - started) / 1000)
    const alerts = log().split('\n').filter((l) => l.endsWith(`${expected} worker_connections are not enough`))
    assert.ok(alerts.length >= 1 && alerts.length <= seconds + 1, `${alerts.length} alerts in ${seconds} s:\n${log()}`)
    // A held busy connection is still served.
    const first = held[0] as net.Socket
    const answer = new Promise<string>((resolve) => {
      let got = ''
      first.on('data', (c: Buffer) => {
        got += c.toString()
      })
      first.on('close', () => resolve(got))
    })
    first.write('Connection: close\r\n\r\n')
    assert.match(await answer, /^HTTP\/1\.1 200 /)
  })
}
