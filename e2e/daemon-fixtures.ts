import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import type { TestContext } from 'node:test'
import tls from 'node:tls'
import type { Daemon } from './processes.js'

/**
 * A backend that holds every request until told to answer: requests "in flight" through a
 * daemon, for as long as a test needs them to be, without sleeping.
 */
export interface HeldBackend {
  port: number
  /** Resolves once `n` requests are held. Bounded: rejects after 20 s. */
  holding(n: number): Promise<void>
  /** Answers every request held so far, and every later one at once. */
  release(): void
}

export async function heldBackend(t: TestContext): Promise<HeldBackend> {
  const held: [http.IncomingMessage, http.ServerResponse][] = []
  let released = false
  const answer = (req: http.IncomingMessage, res: http.ServerResponse) => res.end(`held ${req.url}\n`)
  const server = http.createServer((req, res) => {
    // /idle is what idleKeepAlive asks for: answered at once.
    if (released || req.url === '/idle') answer(req, res)
    else held.push([req, res])
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => {
    server.closeAllConnections()
    server.close()
  })
  return {
    port: (server.address() as net.AddressInfo).port,
    async holding(n) {
      for (let i = 0; i < 400 && held.length < n; i++) await new Promise((r) => setTimeout(r, 50))
      if (held.length < n) throw new Error(`the backend holds ${held.length} requests, not ${n}`)
    },
    release() {
      released = true
      for (const [req, res] of held.splice(0)) answer(req, res)
    },
  }
}

/** A backend that answers at once. */
export async function quickBackend(t: TestContext): Promise<number> {
  const server = http.createServer((req, res) => res.end(`ok ${req.url}\n`))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => {
    server.closeAllConnections()
    server.close()
  })
  return (server.address() as net.AddressInfo).port
}

export interface Answer {
  status: number
  body: string
}

/** One GET on its own connection; rejects with the socket's error (its `code` says which). */
export function get(port: number, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        body += c
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.setTimeout(30_000, () => req.destroy(new Error('no answer in 30 s')))
  })
}

/** One GET over TLS (through tls-terminator), read to the close. */
export function getOverTls(port: number, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
    })
    let text = ''
    s.setEncoding('utf8')
    s.on('data', (c: string) => {
      text += c
    })
    s.on('end', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4) })
    })
    s.on('error', reject)
    s.setTimeout(30_000, () => s.destroy(new Error('no answer in 30 s')))
  })
}

/**
 * A keep-alive connection that made one request and now sits idle: resolves once the daemon
 * has closed it (a graceful stop closes idle keep-alive connections, as nginx's does).
 */
export async function idleKeepAlive(port: number): Promise<{ closed: Promise<void> }> {
  const s = net.connect(port, '127.0.0.1')
  await once(s, 'connect')
  s.on('error', () => undefined)
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()))
  s.write('GET /idle HTTP/1.1\r\nHost: x\r\n\r\n')
  let head = ''
  await new Promise<void>((resolve) => {
    const onData = (c: Buffer) => {
      head += c.toString('latin1')
      if (head.includes('\r\n\r\n')) {
        s.off('data', onData)
        resolve()
      }
    }
    s.on('data', onData)
  })
  s.resume()
  return { closed }
}

/** The pids a manager reported serving, in order (`child 123 serving`, `worker process 123 serving`). */
export function servingPids(d: Daemon): number[] {
  return [...d.output().matchAll(/(?:child|worker process|worker) (\d+) serving/g)].map((m) => Number(m[1]))
}

/** Polls until the manager reports a serving child other than those in `before`. Bounded (20 s). */
export async function nextServing(d: Daemon, before: readonly number[]): Promise<number> {
  for (let i = 0; i < 400; i++) {
    const fresh = servingPids(d).find((p) => !before.includes(p))
    if (fresh !== undefined) return fresh
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${d.name}: no new child serving; output:\n${d.output()}`)
}

export function exitOf(d: Daemon): Promise<[number | null, NodeJS.Signals | null]> {
  if (d.child.exitCode !== null || d.child.signalCode !== null) return Promise.resolve([d.child.exitCode, d.child.signalCode])
  return once(d.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
}

/**
 * Bounded load while something happens to the daemon: `count` GETs on fresh connections,
 * `concurrency` at a time. Resolves with what each got: a status or a socket error code.
 */
export async function load(port: number, count: number, concurrency: number, onProgress?: (done: number) => void): Promise<(number | string)[]> {
  const results: (number | string)[] = []
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      try {
        results[i] = (await get(port, `/load/${i}`)).status
      } catch (err) {
        results[i] = (err as NodeJS.ErrnoException).code ?? (err as Error).message
      }
      onProgress?.(results.filter((r) => r !== undefined).length)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return results
}
