import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { adminCommand } from '../src/admin-client.js'
import { rawExchange } from './raw-client.js'
import { startVclRouter, type VclRouter } from './router-vcl-harness.js'
import { type RunningVarnishd, skipWithoutVarnishd, startVarnishd, VARNISHADM } from './vcl-varnishd.js'

// vmod_directors' hash and shard directors against varnishd 7.1 on the same VCL: five origins
// that answer with their own name, and many distinct URLs and keys through both; every request
// must reach the same origin through both. Pass everywhere, so each request is a fetch.

const NAMES = ['b0', 'b1', 'b2', 'b3', 'b4']

const vcl = (ports: number[]) => `vcl 4.1;
import directors;
${NAMES.map((n, i) => `backend ${n} { .host = "127.0.0.1"; .port = "${ports[i]}"; }`).join('\n')}

sub vcl_init {
    new h = directors.hash();
    h.add_backend(b0);
    h.add_backend(b1, 2);
    h.add_backend(b2, 1.5);
    h.add_backend(b3);
    h.add_backend(b4, 0.5);
    h.remove_backend(b3);

    new s = directors.shard();
    s.add_backend(b0);
    s.add_backend(b1);
    s.add_backend(b2, ident = "two");
    s.add_backend(b3, weight = 2);
    s.add_backend(b4);
    s.reconfigure();

    # changes applied at the end of vcl_init, with the default 67 replicas
    new t = directors.shard();
    t.add_backend(b0);
    t.add_backend(b1);
    t.add_backend(b2);
    t.add_backend(b3);
    t.remove_backend(b1);
    t.add_backend(b4, ident = "extra");

    new few = directors.shard();
    few.add_backend(b0);
    few.add_backend(b1);
    few.add_backend(b2);
    few.clear();
    few.add_backend(b3);
    few.add_backend(b4);
    few.add_backend(b2);
    few.reconfigure(replicas = 7);

    new p = directors.shard_param();
    p.set(by = URL, alt = 1);
    new u = directors.shard();
    u.add_backend(b0);
    u.add_backend(b1);
    u.add_backend(b2);
    u.associate(p.use());

    # b0 ramps up for ten years from its last health change (its creation): the chance it
    # is chosen is the time since over ten years, nil here; the others do not ramp up
    new ramp = directors.shard();
    ramp.add_backend(b0, rampup = 3650d);
    ramp.add_backend(b1);
    ramp.add_backend(b2);

    new rr = directors.round_robin();
    rr.add_backend(b0);
    rr.add_backend(b1);
    rr.add_backend(b2);

    new l = directors.fallback();
    l.add_backend(directors.lookup("b" + "2"));
    l.add_backend(directors.lookup("rr"));

    new fb = directors.fallback();
    fb.add_backend(b3);
    fb.add_backend(b1);
}

sub vcl_recv {
    if (req.http.Upgrade ~ "(?i)websocket") {
        if (req.url ~ "^/ws-url/") {
            set req.backend_hint = s.backend(by = URL);
        } elsif (req.url ~ "^/ws-lazy/") {
            set req.backend_hint = s.backend(resolve = LAZY);
        } elsif (req.url ~ "^/ws-hash/") {
            set req.backend_hint = h.backend(req.url);
        }
        return (pipe);
    }
    if (req.url ~ "^/hash/") {
        set req.backend_hint = h.backend(req.url);
    } elsif (req.url ~ "^/client/") {
        set req.backend_hint = h.backend(client.identity);
    } elsif (req.url ~ "^/shard-url/") {
        set req.backend_hint = s.backend(by = URL);
    } elsif (req.url ~ "^/shard-recv/") {
        set req.backend_hint = s.backend();
    } elsif (req.url ~ "^/shard-lazy/") {
        set req.backend_hint = s.backend(resolve = LAZY);
    } elsif (req.url ~ "^/shard-key/") {
        set req.backend_hint = s.backend(by = KEY, key = s.key(req.http.X-Key));
    } elsif (req.url ~ "^/shard-alt/") {
        set req.backend_hint = s.backend(by = URL, alt = std_alt(), healthy = ALL);
    } elsif (req.url ~ "^/shard-ignore/") {
        set req.backend_hint = s.backend(by = URL, healthy = IGNORE);
    } elsif (req.url ~ "^/t/") {
        set req.backend_hint = t.backend(by = URL);
    } elsif (req.url ~ "^/few/") {
        set req.backend_hint = few.backend(by = URL);
    } elsif (req.url ~ "^/param/") {
        set req.backend_hint = u.backend();
    } elsif (req.url ~ "^/rr/") {
        set req.backend_hint = rr.backend();
    } elsif (req.url ~ "^/fb/") {
        set req.backend_hint = fb.backend();
    } elsif (req.url ~ "^/lookup/") {
        set req.backend_hint = l.backend();
    } elsif (req.url ~ "^/warmup/") {
        set req.backend_hint = s.backend(by = URL, warmup = 1.0);
    } elsif (req.url ~ "^/ramp/") {
        set req.backend_hint = ramp.backend(by = URL);
    } elsif (req.url ~ "^/fail-set/") {
        p.set(alt = 1);
    } elsif (req.url ~ "^/fail-lazy/") {
        set req.backend_hint = s.backend(resolve = LAZY, alt = 1);
    } elsif (req.url ~ "^/fail-key/") {
        set req.backend_hint = s.backend(by = KEY);
    } elsif (req.url ~ "^/param-task/") {
        set req.backend_hint = u.backend(resolve = LAZY);
    } elsif (req.url ~ "^/param-arg/") {
        set req.backend_hint = s.backend(param = p.use());
    }
    return (pass);
}

sub vcl_pipe {
    if (req.url ~ "^/ws-pipe/") {
        set bereq.backend = s.backend();
    }
    if (req.http.Upgrade) {
        set bereq.http.Upgrade = req.http.Upgrade;
        set bereq.http.Connection = req.http.Connection;
    }
}

sub vcl_backend_fetch {
    if (bereq.url ~ "^/shard-fetch/") {
        set bereq.backend = s.backend();
    } elsif (bereq.url ~ "^/shard-blob/") {
        set bereq.backend = s.backend(by = BLOB, key_blob = bereq.hash);
    } elsif (bereq.url ~ "^/param-task/") {
        # this backend request's own parameters, over the VCL's by=URL alt=1
        p.set(by = HASH, healthy = IGNORE);
    }
}

sub vcl_backend_response {
    set beresp.http.X-Param = p.get_by() + " " + p.get_alt() + " " + p.get_healthy() + " " + p.get_key() + " " + p.get_warmup() + " " + p.get_rampup() +
        " " + beresp.backend.name + " " + beresp.backend + " " + bereq.backend;
}

sub vcl_deliver {
    set resp.http.X-Key-Int = s.key(req.url);
}
`.replace('std_alt()', '2')

interface Peer {
  name: string
  port: number
  admin(command: string): Promise<string>
}

function origin(name: string): Promise<http.Server> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'X-Backend': name, 'Content-Type': 'text/plain' })
    res.end(name)
  })
  // A websocket upgrade: the 101 names this origin, then one frame-less line and close.
  server.on('upgrade', (_req, socket) => {
    socket.on('error', () => {})
    socket.end(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Backend: ${name}\r\n\r\nhello from ${name}`)
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

/** Which origin a websocket upgrade through `port` reached: the 101's X-Backend, or the status. */
async function upgradedTo(port: number, url: string): Promise<string> {
  const { responses } = await rawExchange(
    port,
    `GET ${url} HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  )
  const r = responses.find((x) => x.status === 101) ?? responses.at(-1)
  return r ? (r.status === 101 ? (r.headers['x-backend'] ?? '?') : `status ${r.status}`) : 'no answer'
}

async function reached(port: number, url: string, headers: Record<string, string> = {}): Promise<string> {
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')
  const { responses } = await rawExchange(port, `GET ${url} HTTP/1.1\r\nHost: example.com\r\n${extra}Connection: close\r\n\r\n`)
  const r = responses.at(-1)
  return r ? (r.status === 200 ? `${r.headers['x-backend'] ?? '?'} ${r.headers['x-param']}` : `status ${r.status}`) : 'no answer'
}

describe('vmod_directors hash and shard: caching-router vs varnishd', { skip: skipWithoutVarnishd, concurrency: 1 }, () => {
  const origins: http.Server[] = []
  let ours: VclRouter
  let theirs: RunningVarnishd
  const peers: Peer[] = []

  before(async () => {
    for (const n of NAMES) origins.push(await origin(n))
    const text = vcl(origins.map((o) => (o.address() as AddressInfo).port))
    ours = await startVclRouter(text)
    theirs = await startVarnishd(text)
    peers.push(
      { name: 'caching-router', port: ours.port, admin: async (c) => (await adminCommand(ours.admin, undefined, c)).body },
      {
        name: 'varnishd',
        port: theirs.port,
        admin: (c) =>
          new Promise((resolve) => execFile(VARNISHADM, ['-n', theirs.workdir, ...c.split(' ')], { timeout: 10_000 }, (_e, out) => resolve(out ?? ''))),
      },
    )
  })

  after(async () => {
    await ours?.stop()
    await theirs?.stop()
    for (const o of origins) o.close()
  })

  /** Which origin each URL reaches through each peer; they must agree on every one. */
  async function agree(urls: string[], headers: (i: number) => Record<string, string> = () => ({}), ws = false): Promise<string[]> {
    const seen: string[][] = []
    for (const p of peers) {
      const row: string[] = []
      for (let i = 0; i < urls.length; i++) row.push(ws ? await upgradedTo(p.port, urls[i] as string) : await reached(p.port, urls[i] as string, headers(i)))
      seen.push(row)
    }
    const [a, b] = seen as [string[], string[]]
    const differ = urls.flatMap((u, i) => (a[i] === b[i] ? [] : [`${u}: caching-router ${a[i]}, varnishd ${b[i]}`]))
    assert.deepEqual(differ, [], `${differ.length} of ${urls.length} differ:\n${differ.slice(0, 10).join('\n')}`)
    return b
  }

  const urls = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}item-${i * 7919}?q=${i}`)

  test('hash director: weighted members, a removed one, keyed by the URL', async () => {
    const got = await agree(urls('/hash/', 150))
    assert.ok(new Set(got).size >= 3, `spread over members: ${[...new Set(got)]}`)
    assert.ok(!got.includes('b3'), 'the removed member gets nothing')
  })

  test('shard director: by=URL, by=HASH on the client side (req.url), and idents and weights on the ring', async () => {
    const a = await agree(urls('/shard-url/', 150))
    assert.ok(new Set(a).size >= 4, `spread over members: ${[...new Set(a)]}`)
    await agree(urls('/shard-recv/', 100))
  })

  test('shard director: by=HASH on the backend side is the digest vcl_hash built (URL and Host)', async () => {
    await agree(urls('/shard-lazy/', 100))
    await agree(urls('/shard-fetch/', 100))
    await agree(urls('/shard-blob/', 60))
  })

  test('shard director: by=KEY with .key(STRING), alt, healthy=IGNORE', async () => {
    const keys = Array.from({ length: 100 }, (_, i) => `session-${i * 31}`)
    await agree(
      keys.map(() => '/shard-key/'),
      (i) => ({ 'X-Key': keys[i] as string }),
    )
    await agree(urls('/shard-alt/', 60))
    await agree(urls('/shard-ignore/', 40))
  })

  test('shard director: changes queued to the end of vcl_init, remove, clear, replicas, an associated shard_param', async () => {
    await agree(urls('/t/', 100))
    await agree(urls('/few/', 100))
    await agree(urls('/param/', 60))
  })

  test('round_robin turns once per request; fallback takes the first healthy member', async () => {
    // Both start from a fresh director: the same order.
    await agree(Array.from({ length: 9 }, (_, i) => `/rr/${i}`))
    await agree(['/fb/1', '/fb/2'])
  })

  test('shard_param: set in the backend request over the VCL defaults, get_*(), param=; directors.lookup()', async () => {
    const got = await agree(urls('/param-task/', 40))
    // beresp.backend is the pick, bereq.backend the director (LAZY)
    assert.match(got[0] as string, / HASH 1 IGNORE \d+ -1\.000 true (b\d) \1 u$/)
    await agree(urls('/param-arg/', 40))
    await agree(['/lookup/1', '/lookup/2'])
  })

  test('warmup=1 always takes the next backend on the ring; a backend in its rampup gives way', async () => {
    await agree(urls('/warmup/', 60))
    const ramp = await agree(urls('/ramp/', 60))
    assert.ok(!ramp.some((b) => b.startsWith('b0 ')), `b0 is ramping up: ${ramp.join(', ')}`)
  })

  test('backend.list shows each director after the backends, its healthy members over all', async () => {
    const lists = await Promise.all(peers.map(async (p) => (await p.admin('backend.list')).replace(/ {2,}\S{3}, .* GMT$/gm, '').trimEnd()))
    assert.equal(lists[0], lists[1])
    assert.match(lists[1] as string, /^boot\.s +probe +5\/5 +healthy$/m)
  })

  test('what vmod_directors refuses at run time fails the request: 503 from both', async () => {
    assert.deepEqual(await agree(['/fail-set/x', '/fail-lazy/x', '/fail-key/x']), Array(3).fill('status 503'))
  })

  test('return (pipe) honours the director: websocket upgrades reach the backend it chose', async () => {
    const none = () => ({})
    const got = await agree(urls('/ws-url/', 40), none, true)
    assert.ok(new Set(got).size >= 3 && got.every((b) => NAMES.includes(b)), `upgrades spread over the backends: ${[...new Set(got)]}`)
    await agree(urls('/ws-lazy/', 40), none, true)
    await agree(urls('/ws-pipe/', 40), none, true)
    await agree(urls('/ws-hash/', 40), none, true)
  })

  test('a sick member: the ring and the hash move its keys, the rest stay', async () => {
    for (const p of peers) await p.admin('backend.set_health b1 sick')
    const hash = await agree(urls('/hash/', 80))
    assert.ok(!hash.includes('b1'))
    await agree(urls('/shard-url/', 100))
    await agree(urls('/shard-alt/', 60))
    await agree(urls('/shard-ignore/', 40))
    await agree(['/fb/1', '/rr/1', '/rr/2', '/rr/3'])
    for (const p of peers) await p.admin('backend.set_health b1 auto')
  })

  test('every member sick: 503 from both', async () => {
    for (const p of peers) for (const n of NAMES) await p.admin(`backend.set_health ${n} sick`)
    const got = await agree(['/hash/x', '/shard-url/x', '/shard-lazy/x', '/shard-fetch/x', '/rr/x', '/fb/x', '/shard-ignore/x'])
    assert.deepEqual(got.slice(0, 6), Array(6).fill('status 503'))
    for (const p of peers) for (const n of NAMES) await p.admin(`backend.set_health ${n} auto`)
  })
})
