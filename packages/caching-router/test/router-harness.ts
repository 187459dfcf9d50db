import http from 'node:http'
import type { AddressInfo } from 'node:net'
import net from 'node:net'
import type { TestContext } from 'node:test'
import { type AccessLog, createLogger, type HostPort } from '@edgestack/common'
import { articleVcl, backendVcl } from '../src/config/flags-vcl.js'
import type { VclSpec } from '../src/config/model.js'
import { type CachingRouter, createCachingRouter } from '../src/server.js'

export interface Origin {
  address: HostPort
  /** Requests seen, in order. */
  seen: http.IncomingMessage[]
  close(): Promise<void>
}

/** A real HTTP origin on 127.0.0.1:0 whose answers the test writes. */
export async function startOrigin(
  t: TestContext,
  handler: (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void,
): Promise<Origin> {
  const seen: http.IncomingMessage[] = []
  const server = http.createServer((req, res) => {
    seen.push(req)
    handler(req, res, seen.length)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = { host: '127.0.0.1', port: (server.address() as AddressInfo).port }
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  t.after(close)
  return { address, seen, close }
}

/** The router's clock, moved by the test: a TTL passes without the test waiting for it. */
export interface TestClock {
  now(): number
  advance(ms: number): void
}

/**
 * `frozen`: the clock stands still until advanced, so a one-second TTL does not pass between two
 * requests on a loaded machine (a test comparing two routers then sees the same outcomes).
 */
export function testClock(opts: { frozen?: boolean } = {}): TestClock {
  let offset = 0
  const start = Date.now()
  return {
    now: () => (opts.frozen ? start : Date.now()) + offset,
    advance(ms) {
      offset += ms
    },
  }
}

export interface Started {
  router: CachingRouter
  clock: TestClock
  address: HostPort
  url: string
  lines: string[]
  /** The router's own log, `level message` per entry (the console still shows errors only). */
  logs: string[]
}

/**
 * The router as a library, on 127.0.0.1:0, as `-b backend` runs it (builtin.vcl only); with
 * `article`, as `--static-backend article --app-backend backend`; with `vcl`, that VCL text.
 */
export async function startRouter(
  t: TestContext,
  backend: HostPort,
  opts: {
    params?: Record<string, string>
    storageBytes?: number
    proxy?: boolean
    article?: HostPort
    vcl?: string
    /** varnishncsa's -F and -j for the access lines (the harness's default: varnishncsa's format with handling). */
    accessFormat?: { format: string; json: boolean }
    clock?: TestClock
  } = {},
): Promise<Started> {
  const vcl: VclSpec =
    opts.vcl !== undefined
      ? { kind: 'text', name: 'test.vcl', text: opts.vcl }
      : opts.article
        ? { kind: 'text', name: '<--static-backend/--app-backend>', text: articleVcl(opts.article, backend) }
        : { kind: 'text', name: '<-b argument>', text: backendVcl(backend) }
  const clock = opts.clock ?? testClock()
  const lines: string[] = []
  const access: AccessLog = {
    write: (l) => {
      lines.push(l)
    },
    close: async () => {},
  }
  const logs: string[] = []
  const logger = createLogger({ name: 'caching-router', level: 'info' })
  for (const transport of logger.transports) transport.level = 'error'
  logger.on('data', (info: { level: string; message: unknown }) => {
    logs.push(`${info.level} ${String(info.message)}`)
  })
  const router = createCachingRouter(
    {
      listen: [{ address: { host: '127.0.0.1', port: 0 }, proxy: opts.proxy ?? false }],
      vcl,
      storageBytes: opts.storageBytes ?? 16 * 1024 * 1024,
      params: Object.entries(opts.params ?? {}),
      identity: 'test',
      admin: undefined,
      logHandling: opts.accessFormat === undefined,
      accessFormat: opts.accessFormat,
    },
    logger,
    access,
    { clock: clock.now },
  )
  const [address] = await router.listen()
  t.after(() => router.close({ drainTimeoutMs: 500 }))
  const a = address as HostPort
  return { router, clock, address: a, url: `http://127.0.0.1:${a.port}`, lines, logs }
}

export interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One request with node's http client on a fresh connection. */
export function get(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('latin1')
      res.on('data', (c: string) => {
        body += c
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')))
    req.end(opts.body)
  })
}

/** Raw bytes in, everything until the server closes (or 5 s) out; `react` may write more. */
export function exchange(
  addr: HostPort,
  bytes: string | Buffer,
  opts: { end?: boolean; react?: (received: string, socket: net.Socket) => void } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(addr.port, addr.host)
    let out = ''
    s.setEncoding('latin1')
    s.on('data', (c: string) => {
      out += c
      opts.react?.(out, s)
    })
    s.on('close', () => resolve(out))
    s.on('error', reject)
    s.setTimeout(5000, () => {
      s.destroy()
      resolve(out)
    })
    s.write(bytes)
    if (opts.end ?? false) s.end()
  })
}

/**
 * Writes `head` as latin1 bytes (raw, so the bytes a parser sees are exactly these) and
 * resolves when the router closes the connection, or after 3 s.
 */
export function sendRaw(port: number, head: string): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(Buffer.from(head, 'latin1')))
    s.on('data', () => {})
    s.on('error', () => resolve())
    s.on('close', () => resolve())
    setTimeout(() => s.destroy(), 3000).unref()
  })
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A gate an origin handler waits on until the test opens it. */
export function latch(): { wait: Promise<void>; open(): void } {
  let open = () => {}
  const wait = new Promise<void>((resolve) => {
    open = resolve
  })
  return { wait, open }
}
