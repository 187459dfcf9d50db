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

function ask(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let got = ''
    socket.on('data', (c: Buffer) => {
      got += c.toString()
    })
    socket.on('close', () => resolve(got))
    socket.write('GET /a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
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
 * nginx's worker_connections, and the descriptor limit under it: connections past the limit
 * are closed at once (no answer, no waiting), the ones held are served, and the alert
 * `N worker_connections are not enough` is written at most once a second.
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
    for (let i = 0; i < expected; i++) {
      const p = await probe(port)
      held.push(p.socket)
      assert.equal(p.closed, false, `connection ${i + 1} of ${expected} was closed`)
    }
    const started = Date.now()
    for (let i = 0; i < 5; i++) {
      const p = await probe(port)
      held.push(p.socket)
      assert.equal(p.closed, true, `a connection past ${expected} was kept`)
    }
    const seconds = Math.ceil((Date.now() - started) / 1000)
    // A held connection is still served.
    assert.match(await ask(held[0] as net.Socket), /^HTTP\/1\.1 200 /)
    const alerts = log().split('\n').filter((l) => l.includes(`${expected} worker_connections are not enough`))
    assert.ok(alerts.length >= 1 && alerts.length <= seconds + 1, `${alerts.length} alerts in ${seconds} s:\n${log()}`)
    // Freed slots are usable again.
    for (const s of held.splice(1)) s.destroy()
    await new Promise((r) => setTimeout(r, 100))
    assert.equal((await probe(port)).closed, false)
  })
}
