import net, { type AddressInfo } from 'node:net'

/** What a raw backend received: the request line, the header lines as written, the body. */
export interface Received {
  /** The name the backend was started with. */
  backend: string
  line: string
  headers: string[]
  body: Buffer
}

/**
 * One answer of a raw backend. `bytes` goes out as written (a head with bare LF, a mixed-case
 * name, an odd reason, no framing at all); `close` ends the connection after it (a
 * close-delimited body); `hang` never answers; `reset` drops the connection unanswered; `parts`
 * are written one after another, `gapMs` apart (streaming, header/response times).
 */
export type Script =
  | { bytes: string | Buffer; close?: boolean; delayMs?: number }
  | { parts: (string | Buffer)[]; gapMs: number; close?: boolean }
  | { hang: true }
  | { reset: true }

export interface RawBackend {
  port: number
  /** Requests received since the last call. */
  take(): Received[]
  /** Connections accepted so far. */
  readonly connections: number
  close(): Promise<void>
}

/**
 * A backend written on raw sockets, so that a test controls every byte a real backend might
 * write: `script(received)` picks the answer. Requests are read as HTTP/1.x (Content-Length or
 * chunked bodies); the connection stays open for the next request unless the script closes it
 * or the request said `Connection: close` (nginx's default HTTP/1.0 requests do).
 */
export async function startRawBackend(name: string, script: (r: Received) => Script): Promise<RawBackend> {
  let received: Received[] = []
  let connections = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => {
    connections++
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    let buf = Buffer.alloc(0)
    let busy = false
    const pump = (): void => {
      if (busy) return
      const r = readRequest(buf, name)
      if (!r) return
      buf = buf.subarray(r.used)
      received.push(r.req)
      busy = true
      const sc = script(r.req)
      const closeAfter = /^connection:\s*close/im.test(r.req.headers.join('\n')) || r.req.line.endsWith('HTTP/1.0')
      const done = (close: boolean | undefined) => {
        busy = false
        if (close || closeAfter) s.end()
        else pump()
      }
      if ('hang' in sc) return
      if ('reset' in sc) {
        s.resetAndDestroy()
        return
      }
      if ('bytes' in sc) {
        const write = () => {
          if (s.destroyed) return
          s.write(sc.bytes)
          done(sc.close)
        }
        if (sc.delayMs) setTimeout(write, sc.delayMs)
        else write()
        return
      }
      let i = 0
      const next = () => {
        if (s.destroyed) return
        if (i >= sc.parts.length) return done(sc.close)
        s.write(sc.parts[i++] as string | Buffer)
        setTimeout(next, sc.gapMs)
      }
      next()
    }
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c])
      pump()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  return {
    port: (server.address() as AddressInfo).port,
    take() {
      const out = received
      received = []
      return out
    },
    get connections() {
      return connections
    },
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}

function readRequest(buf: Buffer, backend: string): { req: Received; used: number } | undefined {
  const end = buf.indexOf('\r\n\r\n')
  if (end < 0) return undefined
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n')
  const headers = lines.slice(1)
  let used = end + 4
  let body: Buffer = Buffer.alloc(0)
  const cl = headers.find((h) => /^content-length:/i.test(h))
  if (headers.some((h) => /^transfer-encoding:\s*chunked/i.test(h))) {
    const parts: Buffer[] = []
    for (;;) {
      const nl = buf.indexOf('\r\n', used)
      if (nl < 0) return undefined
      const n = Number.parseInt(buf.subarray(used, nl).toString('latin1'), 16)
      if (n === 0) {
        const t = buf.indexOf('\r\n\r\n', nl - 2)
        if (t < 0) return undefined
        used = t + 4
        break
      }
      if (buf.length < nl + 2 + n + 2) return undefined
      parts.push(buf.subarray(nl + 2, nl + 2 + n))
      used = nl + 2 + n + 2
    }
    body = Buffer.concat(parts)
  } else if (cl) {
    const n = Number(cl.slice(cl.indexOf(':') + 1).trim())
    if (buf.length < used + n) return undefined
    body = buf.subarray(used, used + n)
    used += n
  }
  return { req: { backend, line: lines[0] as string, headers, body: Buffer.from(body) }, used }
}
