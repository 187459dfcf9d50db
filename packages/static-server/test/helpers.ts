import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, symlink, utimes, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createLogger, type HostPort, type Logger } from '@edgestack/common'
import { loadNginxConf } from '../src/config/nginx-conf.js'
import { createStaticServer, type StaticServer } from '../src/index.js'
import { freePort } from '@edgestack/common/test/ports'

export const REPO = fileURLToPath(new URL('../../../../', import.meta.url))
export const NGINX = '/usr/sbin/nginx'
export const hasNginx = existsSync(NGINX)
/**
 * `skip` for a differential test against real nginx: false when nginx is there; when it is
 * not, a loud skip on a developer's machine and a failure under CI (the test then runs and
 * cannot start its peer).
 */
export const nginxMissing: string | false = hasNginx || process.env.CI ? false : skipLoudly(`${NGINX} is not installed`)

function skipLoudly(why: string): string {
  console.warn(`SKIPPED: ${why}; differential tests against nginx did not run`)
  return why
}

export interface RawResponse {
  status: number
  reason: string
  headers: Map<string, string>
  body: Buffer
  raw: Buffer
}

/** Sends raw bytes on a fresh connection, reads until the server closes (bounded by 5 s). */
export function rawRequest(addr: HostPort, bytes: string | Buffer, localAddress?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port: addr.port, host: addr.host, ...(localAddress ? { localAddress } : {}) })
    const chunks: Buffer[] = []
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('close', () => resolve(Buffer.concat(chunks)))
    s.on('error', (err) => (chunks.length ? resolve(Buffer.concat(chunks)) : reject(err)))
    s.setTimeout(5000, () => s.destroy())
    s.write(bytes)
  })
}

/** Parses one response (Content-Length or chunked or until close). */
export function parseResponse(raw: Buffer): RawResponse {
  const end = raw.indexOf('\r\n\r\n')
  if (end < 0) return { status: 0, reason: '', headers: new Map(), body: Buffer.alloc(0), raw }
  const head = raw.subarray(0, end).toString('latin1').split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(head[0] as string)
  const headers = new Map<string, string>()
  for (const line of head.slice(1)) {
    const i = line.indexOf(':')
    const k = line.slice(0, i).toLowerCase()
    const v = line.slice(i + 1).trim()
    headers.set(k, headers.has(k) ? `${headers.get(k)}, ${v}` : v)
  }
  let body = raw.subarray(end + 4)
  if (headers.get('transfer-encoding') === 'chunked') {
    const parts: Buffer[] = []
    let i = 0
    for (;;) {
      const nl = body.indexOf('\r\n', i)
      if (nl < 0) break
      const n = Number.parseInt(body.subarray(i, nl).toString(), 16)
      if (!n) break
      parts.push(body.subarray(nl + 2, nl + 2 + n))
      i = nl + 2 + n + 2
    }
    body = Buffer.concat(parts)
  } else if (headers.has('content-length')) {
    body = body.subarray(0, Number(headers.get('content-length')))
  }
  return { status: Number(m?.[1] ?? 0), reason: m?.[2] ?? '', headers, body, raw }
}

/** One request on a fresh connection (from `localAddress`, one of 127/8, when given). */
export async function get(addr: HostPort, path: string, extra: Record<string, string> = {}, method = 'GET', localAddress?: string): Promise<RawResponse> {
  let req = `${method} ${path} HTTP/1.1\r\nHost: ${extra.Host ?? 'localhost'}\r\nConnection: close\r\n`
  for (const [k, v] of Object.entries(extra)) if (k !== 'Host') req += `${k}: ${v}\r\n`
  return parseResponse(await rawRequest(addr, `${req}\r\n`, localAddress))
}


/** The loopback upstream: answers with what it received, so both servers' forwarding can be compared. */
export async function startEcho(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const h = req.headers
      const body = `${req.method} ${req.url} host=${h.host} up=${h.upgrade ?? '-'} xff=${h['x-forwarded-for'] ?? '-'} empty=${h['x-empty'] ?? '-'} te=${h.te ?? '-'} ka=${h['keep-alive'] ?? '-'} body=${Buffer.concat(chunks).length}\n`
      if (req.url?.startsWith('/status/')) res.statusCode = Number(req.url.slice(8, 11))
      res.setHeader('content-type', 'text/plain')
      res.setHeader('x-upstream', 'echo')
      res.end(body)
    })
  })
  server.keepAliveTimeout = 1000
  return listenLoopback(server)
}

/** An HTTP backend on a loopback port of its own, closed with its connections. */
export async function listenLoopback(server: http.Server): Promise<{ port: number; close(): Promise<void> }> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

/** A fixture tree with the cases that matter: index files, dotfiles, unicode, .gz twins, symlinks. */
export async function makeFixtures(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'static-server-'))
  const root = join(dir, 'root')
  for (const d of ['dir', 'sub', 'errors', 'gz', 'plain', 'noindex', 'sym', 'err', 'tf']) await mkdir(join(root, d), { recursive: true })
  const files: Record<string, string | Buffer> = {
    'index.html': '<h1>home</h1>\n',
    'a.txt': 'hello world, this is a.txt\n'.repeat(4),
    'dir/x.css': 'body { color: red }\n',
    'sub/index.html': '<p>sub index</p>\n',
    'errors/404.html': '<p>custom not found</p>\n',
    'gz/app.js': 'console.log("plain")\n',
    'plain/one.txt': 'one\n',
    'plain/two.txt': 'two\n',
    'noindex/file.txt': 'file\n',
    'sym/real.txt': 'real\n',
    'err/here.txt': 'here\n',
    'tf/found.txt': 'found\n',
    'space name.txt': 'space\n',
    'ünï.txt': 'unicode\n',
    '.hidden': 'secret\n',
    'img.PNG': Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4]),
    'data.json': '{"ok":true}\n',
    'empty.txt': '',
  }
  const big = Buffer.alloc(300 * 1024)
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff
  files['big.bin'] = big
  for (const [name, content] of Object.entries(files)) await writeFile(join(root, name), content)
  // A real gzip stream for gzip_static.
  const { gzipSync } = await import('node:zlib')
  await writeFile(join(root, 'gz/app.js.gz'), gzipSync('console.log("plain")\n', { level: 9 }))
  await symlink(join(root, 'sym/real.txt'), join(root, 'sym/inside.txt'))
  await symlink('/etc/hostname', join(root, 'sym/outside.txt'))
  await symlink(join(root, 'a.txt'), join(root, 'link-a.txt'))
  // Fixed times so ETag / Last-Modified are stable across both servers.
  const t = new Date('2024-01-02T03:04:05Z')
  for (const name of [...Object.keys(files), 'gz/app.js.gz']) await utimes(join(root, name), t, t)
  await copyFile(join(REPO, 'config/mime.types'), join(dir, 'mime.types'))
  return dir
}

/** A logger keeping its lines (`LEVEL message`), for the error lines a test expects. */
export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = []
  const add = (level: string) => (message: string) => {
    lines.push(`${level} ${message}`)
  }
  return { logger: { info: add('info'), warn: add('warn'), error: add('error'), debug: add('debug') } as unknown as Logger, lines }
}

export const quietLogger = () => createLogger({ name: 'static-server', level: 'error' })

/** Runs our server on a config file, the way the CLI does. */
export async function startOurs(dir: string, file: string, logger: Logger = quietLogger()): Promise<{ addr: HostPort[]; server: StaticServer }> {
  const model = await loadNginxConf({ file, prefix: dir })
  const server = createStaticServer(model, logger)
  const addr = await server.listen()
  return { addr, server }
}

/** Runs the real nginx on the same file (daemon off, its own prefix), ready when it answers. */
export async function startNginx(dir: string, file: string, port: number): Promise<ChildProcess> {
  const child = spawn(NGINX, ['-p', dir, '-c', file, '-g', 'daemon off; master_process off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString()
  })
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${err}`)
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1')
      s.on('connect', () => {
        s.destroy()
        r(true)
      })
      s.on('error', () => r(false))
    })
    if (ok) return child
    await new Promise((r) => setTimeout(r, 50))
  }
  child.kill('SIGKILL')
  throw new Error(`nginx did not start: ${err}`)
}

/** Real nginx and static-server on the same config (`conf(port, pidFile)`), each on a port of its own. */
export async function startBoth(
  dir: string,
  conf: (port: number, pid: string) => string,
  logger?: Logger,
): Promise<{ nginx: ChildProcess; ours: StaticServer; ourAddr: HostPort; theirAddr: HostPort }> {
  await mkdir(join(dir, 'tmp'), { recursive: true })
  const theirPort = await freePort()
  await writeFile(join(dir, 'nginx.conf'), conf(theirPort, join(dir, 'nginx.pid')))
  const nginx = await startNginx(dir, join(dir, 'nginx.conf'), theirPort)
  const ourPort = await freePort()
  await writeFile(join(dir, 'ours.conf'), conf(ourPort, join(dir, 'ours.pid')))
  let o: Awaited<ReturnType<typeof startOurs>>
  try {
    o = await startOurs(dir, join(dir, 'ours.conf'), logger)
  } catch (err) {
    // The caller's t.after() is not registered yet: nginx would outlive the failed test.
    nginx.kill('SIGKILL')
    throw err
  }
  return { nginx, ours: o.server, ourAddr: o.addr[0] as HostPort, theirAddr: { host: '127.0.0.1', port: theirPort } }
}

/** The port a spawned static-server reports in its `listening on HOST:PORT` line (10 s bound). */
export function listeningPort(child: ChildProcess): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let out = ''
    const t = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 10_000)
    const on = (c: Buffer) => {
      out += c.toString()
      const m = /listening on [^\s:]+:(\d+)/.exec(out)
      if (m) {
        clearTimeout(t)
        resolve(Number(m[1]))
      }
    }
    child.stdout?.on('data', on)
    child.stderr?.on('data', on)
  })
}

export { freePort }
