import type { ChildProcess } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, utimes, writeFile } from 'node:fs/promises'
import type { HostPort } from '@edgestack/common'
import net, { type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadNginxConf } from '../src/config/nginx-conf.js'
import { createStaticServer, type StaticServer } from '../src/index.js'
import { freePort, quietLogger, REPO, rawRequest, startNginx } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'
import type { Area, ProxyCase } from './proxy-corpus.js'
import { type RawBackend, type Received, type Script, startRawBackend } from './raw-backend.js'

/** One answer as a client saw it, normalized so that the two programs can be compared. */
export interface Seen {
  status: string
  headers: string[]
  body: string
  upstream: string[]
  connections: number
}

export interface Outcome {
  area: Area
  name: string
  same: boolean
  ours: Seen[] | string
  nginx: Seen[]
}

interface Ports {
  root: string
  /** A backend that accepts and never reads (proxy_send_timeout). */
  noRead: number
  b1: number
  b2: number
  dead: number
}

const fill = (text: string, id: string, p: Ports) =>
  text
    .replaceAll('@ROOT@', p.root)
    .replaceAll('@NR@', String(p.noRead)).replaceAll('@P@', `/${id}`).replaceAll('@I@', id).replaceAll('@B2@', String(p.b2)).replaceAll('@B@', String(p.b1)).replaceAll('@D@', String(p.dead))

function config(dir: string, port: number, pid: string, cases: [string, ProxyCase][], p: Ports): string {
  return `${httpHead(dir, port, pid)}
    ${cases.map(([id, k]) => (k.http ? fill(k.http, id, p) : '')).join('\n    ')}
    server {
        listen 127.0.0.1:${port} default_server;
        server_name example.com;
        root ${dir}/root;
        ${cases.map(([id, k]) => fill(k.loc, id, p)).join('\n        ')}
    }
}
`
}

function request(k: ProxyCase, id: string): string {
  const path = (k.path ?? '@P@/x').replaceAll('@P@', `/${id}`)
  if (k.raw) return k.raw.replaceAll('@P@', `/${id}`)
  return `${k.method ?? 'GET'} ${path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n${(k.headers ?? []).map((h) => `${h}\r\n`).join('')}\r\n${k.body ?? ''}`
}

/** Splits a response as written: status line, header lines (names as sent), de-chunked body. */
function parse(raw: Buffer, port: number, k: ProxyCase, ours: boolean): Omit<Seen, 'upstream' | 'connections'> {
  const norm = (s: string) => {
    let out = s.replaceAll(`:${port}`, ':PORT').replaceAll('static-server', 'nginx')
    if (k.timing) out = out.replace(/\d+\.\d+/g, 'T')
    return out
  }
  const end = raw.indexOf('\r\n\r\n')
  if (!raw.subarray(0, 5).equals(Buffer.from('HTTP/')) || end < 0) return { status: '(no status line)', headers: [], body: norm(raw.toString('latin1')) }
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n')
  const headers = lines.slice(1).filter((h) => !/^(date|server):/i.test(h))
  let body = raw.subarray(end + 4)
  if (headers.some((h) => /^transfer-encoding:\s*chunked$/i.test(h))) {
    const parts: Buffer[] = []
    let i = 0
    let complete = false
    for (;;) {
      const nl = body.indexOf('\r\n', i)
      if (nl < 0) break
      const n = Number.parseInt(body.subarray(i, nl).toString(), 16)
      if (!n) {
        complete = true
        break
      }
      parts.push(body.subarray(nl + 2, nl + 2 + n))
      i = nl + 2 + n + 2
    }
    body = Buffer.concat([...parts, Buffer.from(complete ? '' : '[chunked body cut]')])
  }
  let text = body.length > 4096 ? `${body.length} bytes, sum ${checksum(body)}` : norm(body.toString('latin1'))
  // Our pages name us: the page is 8 bytes longer than nginx's.
  const page = body.includes('<hr><center>static-server</center>') || (ours && k.method === 'HEAD' && headers.includes('Content-Type: text/html'))
  const hs = headers.map((h) => {
    const m = /^content-length: (\d+)$/i.exec(h)
    return norm(m && page ? `${h.slice(0, 16)}${Number(m[1]) - 8}` : h)
  })
  if (page) text = norm(text)
  return { status: norm(lines[0] as string), headers: hs, body: text }
}

function checksum(b: Buffer): number {
  let s = 0
  for (const x of b) s = (s * 31 + x) >>> 0
  return s
}

const upstreamView = (rs: Received[]) => rs.map((r) => [r.backend, r.line, ...r.headers, `body=${r.body.toString('latin1')}`].join('\n'))

/**
 * Runs every case of the corpus under real nginx and under static-server: one nginx.conf per
 * area (each case a location of its own), raw backends shared by both. Where our server cannot
 * load an area's file, each case is tried alone so that one unknown directive fails only the
 * cases that use it (and that is what the case reports).
 */
export async function runProxyCorpus(corpus: ProxyCase[]): Promise<Outcome[]> {
  const byId = new Map<string, ProxyCase>()
  for (const [i, k] of corpus.entries()) byId.set(`c${i}`, k)
  const script = (r: Received): Script => {
    const m = /\/(c\d+)(?=[^\d]|$)/.exec(r.line)
    const k = m ? byId.get(m[1] as string) : undefined
    const s = k?.script ?? { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n' }
    const sc = typeof s === 'function' ? s(r) : s
    return 'bytes' in sc && typeof sc.bytes === 'string' ? { ...sc, bytes: fill(sc.bytes, m?.[1] as string, ports) } : sc
  }
  const dir = await mkdtemp(join(tmpdir(), 'proxy-corpus-'))
  const stalled = new Set<Socket>()
  const noRead = net.createServer((s) => {
    s.pause()
    stalled.add(s)
    s.on('error', () => {})
  })
  await new Promise<void>((r) => noRead.listen(0, '127.0.0.1', () => r()))
  const ports: Ports = { root: join(dir, 'root'), noRead: (noRead.address() as AddressInfo).port, b1: 0, b2: 0, dead: await freePort() }
  const b1 = await startRawBackend('b1', script)
  const b2 = await startRawBackend('b2', script)
  ports.b1 = b1.port
  ports.b2 = b2.port
  await mkdir(join(dir, 'tmp'), { recursive: true })
  await mkdir(join(dir, 'root/files'), { recursive: true })
  await writeFile(join(dir, 'root/files/secret.txt'), 'the protected file\n')
  await utimes(join(dir, 'root/files/secret.txt'), new Date('2024-01-02T03:04:05Z'), new Date('2024-01-02T03:04:05Z'))
  await copyFile(join(REPO, 'config/mime.types'), join(dir, 'mime.types'))
  const out: Outcome[] = []
  try {
    const areas = [...new Set(corpus.map((k) => k.area))]
    for (const area of areas) {
      const cases = [...byId].filter(([, k]) => k.area === area)
      const theirPort = await freePort()
      await writeFile(join(dir, `${area}-nginx.conf`), config(dir, theirPort, join(dir, `${area}.pid`), cases, ports))
      const nginx = await startNginx(dir, join(dir, `${area}-nginx.conf`), theirPort)
      let ours: { server: StaticServer; addr: HostPort } | string = await startOurs(dir, `${area}-ours`, cases, ports)
      try {
        for (const [id, k] of cases) {
          const theirs = await exchange(k, id, { host: '127.0.0.1', port: theirPort }, [b1, b2], false)
          let mine: Seen[] | string
          if (typeof ours === 'string') {
            const alone = await startOurs(dir, `${id}-ours`, [[id, k]], ports)
            if (typeof alone === 'string') mine = alone
            else {
              mine = await exchange(k, id, alone.addr, [b1, b2], true)
              await alone.server.close({ drainTimeoutMs: 50 })
            }
          } else mine = await exchange(k, id, ours.addr, [b1, b2], true)
          out.push({ area, name: k.name, same: JSON.stringify(mine) === JSON.stringify(theirs), ours: mine, nginx: theirs })
        }
      } finally {
        await stopNginx(nginx)
        if (typeof ours !== 'string') await ours.server.close({ drainTimeoutMs: 50 })
        ours = ''
      }
    }
  } finally {
    await b1.close()
    await b2.close()
    for (const s of stalled) s.destroy()
    noRead.close()
  }
  return out
}

async function startOurs(dir: string, name: string, cases: [string, ProxyCase][], p: Ports): Promise<{ server: StaticServer; addr: HostPort } | string> {
  const port = await freePort()
  const file = join(dir, `${name}.conf`)
  await writeFile(file, config(dir, port, join(dir, `${name}.pid`), cases, p))
  try {
    const model = await loadNginxConf({ file, prefix: dir })
    const server = createStaticServer(model, quietLogger())
    const addr = (await server.listen())[0] as HostPort
    return { server, addr }
  } catch (err) {
    return `does not load: ${(err as Error).message.replace(file, 'FILE')}`
  }
}

async function exchange(k: ProxyCase, id: string, addr: HostPort, backends: RawBackend[], ours: boolean): Promise<Seen[]> {
  const seen: Seen[] = []
  for (let i = 0; i < (k.times ?? 1); i++) {
    for (const b of backends) b.take()
    const before = backends.reduce((n, b) => n + b.connections, 0)
    const raw = await rawRequest(addr, request(k, id))
    // Let a backend see what was sent after the answer (a keep-alive request, a close).
    await new Promise((r) => setTimeout(r, 5))
    const received = backends.flatMap((b) => b.take())
    seen.push({
      ...parse(raw, addr.port, k, ours),
      upstream: k.upstreamRequest ? upstreamView(received) : [],
      connections: k.connections ? backends.reduce((n, b) => n + b.connections, 0) - before : 0,
    })
  }
  return seen
}

async function stopNginx(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  const gone = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  await gone
}

/** Per area: cases, and how many give nginx's answer. */
export function summary(outcomes: Outcome[]): string {
  const rows = new Map<string, { n: number; same: number }>()
  for (const o of outcomes) {
    const r = rows.get(o.area) ?? { n: 0, same: 0 }
    r.n++
    if (o.same) r.same++
    rows.set(o.area, r)
  }
  let total = 0
  let same = 0
  const lines = [...rows].map(([a, r]) => {
    total += r.n
    same += r.same
    return `${a.padEnd(10)} ${String(r.same).padStart(3)}/${String(r.n).padEnd(3)} ${((100 * r.same) / r.n).toFixed(0)}%`
  })
  lines.push(`${'all'.padEnd(10)} ${String(same).padStart(3)}/${String(total).padEnd(3)} ${((100 * same) / total).toFixed(0)}%`)
  return lines.join('\n')
}
