import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { test } from 'node:test'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { CA, fixture } from './helpers.js'

// Issue 15: under a lowered RLIMIT_NOFILE the default connection limit follows it (two
// descriptors a client, 32 kept back), so a client past it is closed at accept, before its
// handshake, and the clients already in are still served; the refusal is logged once a second.

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url))
const NOFILE = 96
const BUDGET = (NOFILE - 32) / 2

function connect(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: CA, servername: 'localhost' }, () => resolve(s))
    s.once('error', reject)
    s.once('close', () => reject(new Error('closed before the handshake')))
    // A client left without an answer is what the limit prevents: give up on it after 5 s.
    setTimeout(() => {
      s.destroy()
      reject(new Error('no answer in 5 s'))
    }, 5000).unref()
  })
}

async function echo(s: tls.TLSSocket, text: string): Promise<string> {
  s.write(text)
  const [chunk] = await once(s, 'data')
  return (chunk as Buffer).toString()
}

test(`with ulimit -n ${NOFILE}: ${BUDGET} clients served, the next refused before its handshake`, { timeout: 60_000 }, async (t) => {
  const backend = net.createServer((c) => {
    c.on('error', () => {})
    c.pipe(c)
  })
  backend.listen(0, '127.0.0.1')
  await once(backend, 'listening')
  t.after(() => new Promise<void>((resolve) => backend.close(() => resolve())))
  const bport = (backend.address() as net.AddressInfo).port

  const args = ['--accept', '127.0.0.1:0', '--connect', `127.0.0.1:${bport}`, '--cert', fixture('localhost.crt'), '--key', fixture('localhost.key')]
  const quoted = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ')
  const child = spawn('bash', ['-c', `ulimit -n ${NOFILE} && exec ${quoted}`], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString()
  })
  child.stderr.on('data', (c: Buffer) => {
    out += c.toString()
  })
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  })
  for (let i = 0; i < 200 && !/listening on 127\.0\.0\.1:\d+/.test(out); i++) await new Promise((r) => setTimeout(r, 50))
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(out)?.[1])
  assert.ok(port > 0, out)
  assert.match(out, new RegExp(`connection limit ${BUDGET} per listener \\(RLIMIT_NOFILE ${NOFILE}`))

  const clients: tls.TLSSocket[] = []
  t.after(() => {
    for (const c of clients) c.destroy()
  })
  for (let i = 0; i < BUDGET; i++) {
    const c = await connect(port)
    clients.push(c)
    assert.equal(await echo(c, `hello ${i}`), `hello ${i}`)
  }
  // Past the limit: closed at accept, no handshake, several times in a row.
  for (let i = 0; i < 5; i++) await assert.rejects(connect(port), /closed before the handshake|ECONNRESET|socket disconnected/)
  // The clients already in are served.
  assert.equal(await echo(clients[0] as tls.TLSSocket, 'still here'), 'still here')
  // One leaves; a new client takes its place.
  const leaving = clients.shift() as tls.TLSSocket
  leaving.destroy()
  let fresh: tls.TLSSocket | undefined
  const errors: string[] = []
  for (let i = 0; i < 20 && fresh === undefined; i++) {
    fresh = await connect(port).catch((e: Error) => {
      errors.push(e.message)
      return undefined
    })
    if (fresh === undefined) await new Promise((r) => setTimeout(r, 100))
  }
  assert.ok(!errors.includes("no answer in 5 s"), `a client was accepted and left without an answer: ${errors.join(", ")}`)
  assert.ok(fresh, `a slot freed by a leaving client is used again: ${errors.join(', ')}\n${out.slice(-2000)}`)
  clients.push(fresh)
  assert.equal(await echo(fresh, 'new'), 'new')
  // Five refusals within a second: one "limit reached" line, not five; no descriptor error.
  assert.equal(out.match(/connection limit \d+ reached/g)?.length, 1, out)
  assert.doesNotMatch(out, /EMFILE/)
})
