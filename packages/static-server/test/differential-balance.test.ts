import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import net, { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { StaticServer } from '../src/index.js'
import { nginxMissing, parseResponse, startNginx, startOurs } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'

/**
 * Which backend each request lands on, static-server against nginx 1.22.1 on the same
 * nginx.conf: every balancing method over many keys and many client addresses (127.x.y.z
 * source addresses: Linux routes all of 127/8 to loopback), with weights, `down`, a dead
 * server under max_fails, backups, max_conns and least_conn under real concurrency, and the
 * client address taken from a PROXY header by realip. nginx listens in this test's port range
 * (22000-22999: it cannot take port 0).
 */

/** A backend that answers its own name; `hold` keeps answers back until `release()`. */
interface Backend {
  name: string
  port: number
  /** Requests received (a held one counts as soon as it arrives). */
  seen: number
  hold: boolean
  release(): void
  close(): Promise<void>
}

async function startBackend(name: string): Promise<Backend> {
  const held: net.Socket[] = []
  const sockets = new Set<net.Socket>()
  const answer = (s: net.Socket) => s.end(`HTTP/1.1 200 OK\r\nContent-Length: ${name.length}\r\nConnection: close\r\n\r\n${name}`)
  const b: Backend = {
    name,
    port: 0,
    seen: 0,
    hold: false,
    release: () => {
      for (const s of held.splice(0)) answer(s)
    },
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy()
      server.close(() => r())
    }),
  }
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    let head = ''
    s.on('data', (c: Buffer) => {
      head += c.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      head = ''
      b.seen++
      if (b.hold) held.push(s)
      else answer(s)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  b.port = (server.address() as AddressInfo).port
  return b
}

/** A port of this test's range that nothing listens on right now. */
async function rangePort(taken: Set<number>): Promise<number> {
  for (let p = 22100; p < 23000; p++) {
    if (taken.has(p)) continue
    const free = await new Promise<boolean>((r) => {
      const s = net.createServer()
      s.once('error', () => r(false))
      s.listen(p, '127.0.0.1', () => s.close(() => r(true)))
    })
    if (free) {
      taken.add(p)
      return p
    }
  }
  throw new Error('no free port in 22100-22999')
}

/** One request on a fresh connection: the body (the backend's name) or `status N`. */
function ask(port: number, path: string, opts: { from?: string; proxy?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', ...(opts.from ? { localAddress: opts.from } : {}) })
    const chunks: Buffer[] = []
    s.setTimeout(10_000, () => s.destroy(new Error(`no answer to ${path}`)))
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('error', reject)
    s.on('close', () => {
      const r = parseResponse(Buffer.concat(chunks))
      resolve(r.status === 200 ? r.body.toString('latin1').trim() : `status ${r.status}`)
    })
    s.write(Buffer.from(`${opts.proxy ?? ''}GET ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`, 'latin1'))
  })
}

/** 120 client addresses over many /24s (ip_hash keys on three octets) and a few in the same /24. */
const CLIENTS = Array.from({ length: 120 }, (_, i) => `127.${1 + (i % 7)}.${(i * 37) % 251}.${1 + (i % 3)}`)
const KEYS = Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? `user-${i}` : i % 3 === 1 ? `/assets/${i}.js` : `sid-${(i * 7919).toString(36)}`))

function conf(port: number, pp: number, ppBare: number, dir: string, pid: string, b: Record<string, number>): string {
  const s = (n: string, extra = '') => `server 127.0.0.1:${b[n]}${extra};`
  const ups: Record<string, string> = {
    rr: `${s('b1', ' weight=3')} ${s('b2')} ${s('b3', ' weight=2')}`,
    lc: `least_conn; ${s('b1')} ${s('b2', ' weight=2')} ${s('b3')}`,
    iph: `ip_hash; ${s('b1')} ${s('b2', ' weight=2')} ${s('b3')} ${s('b4')}`,
    iph_down: `ip_hash; ${s('b1')} ${s('b2', ' down')} ${s('b3')} ${s('b4')}`,
    iph_fail: `ip_hash; ${s('b1')} ${s('dead', ' max_fails=1 fail_timeout=60s')} ${s('b3')}`,
    h: `hash $arg_k; ${s('b1', ' weight=2')} ${s('b2')} ${s('b3')} ${s('b4', ' weight=3')}`,
    h_down: `hash $arg_k; ${s('b1')} ${s('b2', ' down')} ${s('b3')} ${s('b4')}`,
    h_fail: `hash $arg_k; ${s('b1')} ${s('dead', ' max_fails=1 fail_timeout=60s')} ${s('b3')}`,
    h_empty: `hash $arg_none; ${s('b1')} ${s('b2')} ${s('b3')}`,
    ch: `hash $arg_k consistent; ${s('b1')} ${s('b2', ' weight=2')} ${s('b3')} ${s('b4')}`,
    ch_down: `hash $arg_k consistent; ${s('b1')} ${s('b2')} ${s('b3', ' down')} ${s('b4')}`,
    ch_fail: `hash $arg_k consistent; ${s('b1')} ${s('dead', ' max_fails=2 fail_timeout=60s')} ${s('b3')} ${s('b4')}`,
    rnd: `random; ${s('b1', ' down')} ${s('b2')} ${s('dead', ' max_fails=1 fail_timeout=60s')}`,
    rnd_w: `random; ${s('b1')} ${s('b2', ' weight=2')}`,
    rnd2: `random two least_conn; ${s('b1')} ${s('b2', ' down')} ${s('b3')}`,
    backup: `${s('b1', ' down')} ${s('dead', ' max_fails=1 fail_timeout=60s')} ${s('b3', ' backup')} ${s('b4', ' backup')}`,
    maxc: `${s('slow', ' max_conns=1')} ${s('b2')} ${s('b3')}`,
    lc_busy: `least_conn; ${s('slow', ' weight=3')} ${s('b2')} ${s('b3', ' weight=2')}`,
  }
  return `${httpHead(dir, port, pid)}
    ${Object.entries(ups).map(([n, body]) => `upstream ${n} { ${body} }`).join('\n    ')}
    server {
        listen 127.0.0.1:${port} default_server;
        ${Object.keys(ups).map((n) => `location /${n}/ { proxy_pass http://${n}; }`).join('\n        ')}
        location /xff {
            set_real_ip_from 127.0.0.0/8;
            real_ip_header X-Forwarded-For;
            real_ip_recursive on;
            location /xff/who { return 200 "$remote_addr|$remote_port\\n"; }
        }
    }
    server {
        listen 127.0.0.1:${pp} proxy_protocol;
        set_real_ip_from 127.0.0.0/8;
        real_ip_header proxy_protocol;
        location /who { return 200 "$remote_addr|$remote_port|$proxy_protocol_addr|$proxy_protocol_port|$proxy_protocol_server_addr|$proxy_protocol_server_port|$realip_remote_addr\\n"; }
        location /iph/ { proxy_pass http://iph; }
    }
    server {
        listen 127.0.0.1:${ppBare} proxy_protocol;
        location /who { return 200 "$remote_addr|$proxy_protocol_addr|$proxy_protocol_port\\n"; }
        location /iph/ { proxy_pass http://iph; }
    }
}
`
}

interface Side {
  port: number
  pp: number
  ppBare: number
}

describe('upstream balancing: the backend each request lands on, as nginx', { skip: nginxMissing }, () => {
  const backends: Record<string, Backend> = {}
  const ports: Record<string, number> = {}
  let nginx: ChildProcess | undefined
  let ours: StaticServer | undefined
  const sides: { nginx: Side; ours: Side } = { nginx: { port: 0, pp: 0, ppBare: 0 }, ours: { port: 0, pp: 0, ppBare: 0 } }

  before(async () => {
    for (const n of ['b1', 'b2', 'b3', 'b4', 'slow']) {
      const b = await startBackend(n)
      backends[n] = b
      ports[n] = b.port
    }
    const taken = new Set<number>()
    // A port nothing listens on: every try there is refused (nginx's "error").
    ports.dead = await rangePort(taken)
    const dir = await mkdtemp(join(tmpdir(), 'balance-'))
    await mkdir(join(dir, 'tmp'), { recursive: true })
    await writeFile(join(dir, 'mime.types'), 'types { text/plain txt; }\n')
    for (const who of ['nginx', 'ours'] as const) {
      const side = sides[who]
      side.port = await rangePort(taken)
      side.pp = await rangePort(taken)
      side.ppBare = await rangePort(taken)
      const file = join(dir, `${who}.conf`)
      await writeFile(file, conf(side.port, side.pp, side.ppBare, dir, join(dir, `${who}.pid`), ports))
      if (who === 'nginx') nginx = await startNginx(dir, file, side.port)
      else ours = (await startOurs(dir, file)).server
    }
  })

  after(async () => {
    nginx?.kill('SIGKILL')
    await ours?.close({ drainTimeoutMs: 50 })
    for (const b of Object.values(backends)) await b.close()
  })

  /** The same requests, one after another, to nginx and then to us. */
  async function both(requests: { path: string; from?: string; proxy?: string }[], side: keyof Side = 'port') {
    const out: Record<'nginx' | 'ours', string[]> = { nginx: [], ours: [] }
    for (const who of ['nginx', 'ours'] as const) {
      for (const r of requests) out[who].push(await ask(sides[who][side], r.path, r))
    }
    return out
  }

  const sameLanding = (name: string, requests: () => { path: string; from?: string; proxy?: string }[], side: keyof Side = 'port') =>
    test(name, async () => {
      const rs = requests()
      const r = await both(rs, side)
      const differ = rs.flatMap((q, i) => (r.ours[i] === r.nginx[i] ? [] : [`${q.from ?? ''} ${q.path}: ours ${r.ours[i]}, nginx ${r.nginx[i]}`]))
      assert.deepEqual(differ, [], `${differ.length} of ${rs.length} land elsewhere:\n${differ.slice(0, 20).join('\n')}`)
      // A test that proves something: more than one backend is used, and never the dead one.
      assert.ok(new Set(r.nginx).size > 1 || rs.length < 2, `only ${[...new Set(r.nginx)].join()} answered`)
    })

  const byKey = (loc: string) => () => KEYS.map((k) => ({ path: `/${loc}/x?k=${encodeURIComponent(k)}` }))
  const byClient = (loc: string) => () => CLIENTS.map((from) => ({ path: `/${loc}/x`, from }))

  sameLanding('round robin with weights (smooth weighted round robin)', () => Array.from({ length: 24 }, () => ({ path: '/rr/x' })))
  sameLanding('least_conn, one request at a time', () => Array.from({ length: 12 }, () => ({ path: '/lc/x' })))
  sameLanding('ip_hash over 120 client addresses', byClient('iph'))
  sameLanding('ip_hash with a server down', byClient('iph_down'))
  sameLanding('ip_hash with a dead server (max_fails=1)', byClient('iph_fail'))
  sameLanding('hash $arg_k over 200 keys', byKey('h'))
  sameLanding('hash with a server down', byKey('h_down'))
  sameLanding('hash with a dead server (max_fails=1): rehashed as nginx', byKey('h_fail'))
  sameLanding('hash with an empty key: round robin', () => Array.from({ length: 9 }, () => ({ path: '/h_empty/x' })))
  sameLanding('hash consistent (ketama points) over 200 keys', byKey('ch'))
  sameLanding('hash consistent with a server down', byKey('ch_down'))
  sameLanding('hash consistent with a dead server (max_fails=2)', byKey('ch_fail'))
  sameLanding('backups only once every primary is down or failed', () => Array.from({ length: 8 }, () => ({ path: '/backup/x' })))

  test('random: only usable servers, by weight, and a dead one failed over', async () => {
    const r = await both(Array.from({ length: 40 }, () => ({ path: '/rnd/x' })))
    assert.deepEqual(new Set(r.ours), new Set(['b2']))
    assert.deepEqual(new Set(r.nginx), new Set(['b2']))
    // nginx draws from random(3), so only where requests may land can be compared.
    const w = await both(Array.from({ length: 40 }, () => ({ path: '/rnd_w/x' })))
    assert.deepEqual(new Set(w.ours), new Set(w.nginx))
    const two = await both(Array.from({ length: 40 }, () => ({ path: '/rnd2/x' })))
    assert.deepEqual(new Set(two.ours), new Set(['b1', 'b3']))
    assert.deepEqual(new Set(two.nginx), new Set(['b1', 'b3']))
  })

  /** One request held at `slow`, then the others: where they land depends on connections in flight. */
  async function underLoad(loc: string, n: number): Promise<Record<'nginx' | 'ours', string[]>> {
    const slow = backends.slow as Backend
    const out: Record<'nginx' | 'ours', string[]> = { nginx: [], ours: [] }
    for (const who of ['nginx', 'ours'] as const) {
      slow.hold = true
      const seen = slow.seen
      const first = ask(sides[who].port, `/${loc}/x`)
      for (let i = 0; i < 500 && slow.seen === seen; i++) await new Promise((r) => setTimeout(r, 10))
      assert.equal(slow.seen, seen + 1, `the first request to /${loc}/ did not reach the slow backend`)
      for (let i = 0; i < n; i++) out[who].push(await ask(sides[who].port, `/${loc}/x`))
      slow.hold = false
      slow.release()
      out[who].unshift(await first)
    }
    return out
  }

  test('max_conns: a server at its limit is passed over', async () => {
    const r = await underLoad('maxc', 6)
    assert.deepEqual(r.ours, r.nginx)
    assert.ok(!r.nginx.slice(1).includes('slow'))
  })

  test('least_conn with a request in flight', async () => {
    const r = await underLoad('lc_busy', 8)
    assert.deepEqual(r.ours, r.nginx)
    assert.ok(!r.nginx.slice(1).includes('slow'))
  })

  test('PROXY v1 and v2 headers: realip with real_ip_header proxy_protocol, and $proxy_protocol_*', async () => {
    const who = async (side: keyof Side, proxy: string) => {
      const r = await both([{ path: '/who', proxy }], side)
      // Where realip declines, $remote_port is the connection's own (another each time).
      const norm = (s: string) => s.replace(/^127\.0\.0\.1\|\d+\|/, '127.0.0.1|PORT|')
      return { ours: r.ours.map(norm), nginx: r.nginx.map(norm) }
    }
    const v4 = 'PROXY TCP4 203.0.113.7 127.0.0.1 40123 443\r\n'
    let r = await who('pp', v4)
    assert.deepEqual(r.ours, r.nginx)
    assert.match(r.nginx[0] as string, /^203\.0\.113\.7\|40123\|203\.0\.113\.7\|40123\|127\.0\.0\.1\|443\|127\.0\.0\.1$/)
    r = await who('pp', 'PROXY TCP6 2001:db8::5 ::1 40124 443\r\n')
    assert.deepEqual(r.ours, r.nginx)
    // PROXY v2 (binary): TCP over IPv4, 198.51.100.9:5555 to 127.0.0.1:443.
    const v2 = Buffer.concat([Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1'), Buffer.from([0x21, 0x11, 0, 12, 198, 51, 100, 9, 127, 0, 0, 1, 0x15, 0xb3, 0x01, 0xbb])])
    r = await who('pp', v2.toString('latin1'))
    assert.deepEqual(r.ours, r.nginx)
    assert.match(r.nginx[0] as string, /^198\.51\.100\.9\|5555\|/)
    r = await who('pp', 'PROXY UNKNOWN\r\n')
    assert.deepEqual(r.ours, r.nginx)
    // Without realip the connection's address stays $remote_addr.
    const bare = await both([{ path: '/who', proxy: v4 }], 'ppBare')
    assert.deepEqual(bare.ours, bare.nginx)
    assert.equal(bare.nginx[0], '127.0.0.1|203.0.113.7|40123')
  })

  test('X-Forwarded-For with ports, as realip reads it', async () => {
    const values = ['203.0.113.5', '203.0.113.5:8080', '[2001:db8::1]:8080', '2001:db8::2', '198.51.100.1, 127.0.0.1', '198.51.100.1:99, 127.0.0.5:1', '127.0.0.1', 'junk', '203.0.113.5:0', '203.0.113.5:99999', '']
    const out: Record<'nginx' | 'ours', string[]> = { nginx: [], ours: [] }
    for (const who of ['nginx', 'ours'] as const) {
      for (const v of values) {
        const raw = await new Promise<string>((resolve, reject) => {
          const s = net.connect(sides[who].port, '127.0.0.1')
          let got = ''
          s.on('data', (c: Buffer) => {
            got += c.toString('latin1')
          })
          s.on('error', reject)
          s.on('close', () => resolve(parseResponse(Buffer.from(got, 'latin1')).body.toString().trim()))
          s.end(`GET /xff/who HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: ${v}\r\nConnection: close\r\n\r\n`)
        })
        // Where realip declines, $remote_port is the connection's own (another each time).
        out[who].push(raw.replace(/^127\.0\.0\.1\|\d+$/, '127.0.0.1|PORT'))
      }
    }
    assert.deepEqual(out.ours, out.nginx)
  })

  const proxied = (i: number) => `PROXY TCP4 198.${18 + (i % 2)}.${(i * 13) % 256}.${i % 250} 127.0.0.1 ${1024 + i} 443\r\n`
  sameLanding('ip_hash hashes the address a PROXY header gave (realip)', () => Array.from({ length: 60 }, (_, i) => ({ path: '/iph/x', proxy: proxied(i) })), 'pp')
  // IPv6 clients hash all 16 bytes: only a PROXY header can bring many of them over loopback.
  const proxied6 = (i: number) => `PROXY TCP6 2001:db8:${(i * 7) % 97}::${(i * 131).toString(16)} ::1 ${2048 + i} 443\r\n`
  sameLanding('ip_hash over IPv6 clients (all 16 bytes)', () => Array.from({ length: 60 }, (_, i) => ({ path: '/iph/x', proxy: proxied6(i) })), 'pp')

  test('ip_hash without realip hashes the proxy, as nginx', async () => {
    const r = await both(Array.from({ length: 20 }, (_, i) => ({ path: '/iph/x', proxy: proxied(i) })), 'ppBare')
    assert.deepEqual(r.ours, r.nginx)
    assert.equal(new Set(r.nginx).size, 1)
  })
})
