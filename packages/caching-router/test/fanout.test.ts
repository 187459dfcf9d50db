import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { freePort } from '@edgestack/common/test/ports'
import { get, type Origin, sleep, startOrigin } from './router-harness.js'
import { ROUTER_CLI, type RouterProcess, spawnRouter } from './router-process.js'
import { type RunningVarnishd, skipWithoutVarnishd, startVarnishd, varnishInstalled } from './vcl-varnishd.js'

/**
 * `caching-router fanout`: one ban (over the varnishadm CLI protocol, -T) and one purge and
 * xkey purge (HTTP, -a) to a cluster of two caching-routers and one real varnishd 7.1 with the
 * same VCL and secret. Each node caches its own copy (an origin counting fetches per path); an
 * order reached a node when that node fetches the path again, and only that path.
 * The routers' -T is port 0 (each logs the port it got); varnishd's is common's freePort (below
 * the ephemeral range).
 */

const VCL = (originPort: number) => `vcl 4.1;
import xkey;
backend origin { .host = "127.0.0.1"; .port = "${originPort}"; }
sub vcl_recv {
  if (req.method == "PURGE") {
    if (req.http.xkey-purge) {
      return (synth(200, "Invalidated " + xkey.purge(req.http.xkey-purge) + " objects"));
    }
    return (purge);
  }
}
`

interface Run {
  code: number
  stdout: string
  stderr: string
}

function fanout(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [ROUTER_CLI, 'fanout', ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr })
    })
  })
}

describe('caching-router fanout: ban, purge and xkey purge on every node, routers and varnishd', { skip: skipWithoutVarnishd }, () => {
  const fetched = new Map<string, number>()
  let dir = ''
  let secret = ''
  const routers: RouterProcess[] = []
  let varnishd: RunningVarnishd | undefined
  let origin: Origin | undefined
  const admin: string[] = []
  let http: string[] = []

  before(async () => {
    if (!varnishInstalled) assert.fail('varnishd is not installed: apt-get install varnish')
    // Closed in this suite's after(), not a test's.
    origin = await startOrigin({ after: () => undefined } as never, (req, res) => {
      fetched.set(req.url as string, (fetched.get(req.url as string) ?? 0) + 1)
      res.setHeader('Cache-Control', 'max-age=300')
      res.setHeader('xkey', req.url === '/c' ? 'group-c' : 'other')
      res.end(`body of ${req.url}`)
    })
    dir = await mkdtemp(join(tmpdir(), 'fanout-'))
    secret = join(dir, 'secret')
    await writeFile(secret, 'a shared secret\n', { mode: 0o644 })
    const vcl = join(dir, 'fanout.vcl')
    await writeFile(vcl, VCL(origin.address.port), { mode: 0o644 })
    for (const _ of [0, 1]) {
      const router = await spawnRouter(['-a', '127.0.0.1:0', '-f', vcl, '-T', '127.0.0.1:0', '-S', secret])
      routers.push(router)
      for (let i = 0; i < 250 && !/admin CLI on \S+/.test(router.output()); i++) await sleep(20)
      admin.push((/admin CLI on (\S+)/.exec(router.output()) as RegExpExecArray)[1] as string)
    }
    // varnishd takes the last -T and -S it is given.
    const T = await freePort()
    varnishd = await startVarnishd(VCL(origin.address.port), ['-T', `127.0.0.1:${T}`, '-S', secret])
    admin.push(`127.0.0.1:${T}`)
    http = [...routers.map((r) => `127.0.0.1:${r.port}`), `127.0.0.1:${varnishd.port}`]
    // Every node caches every path: three fetches a path, then hits.
    for (const path of ['/a', '/b', '/c']) {
      for (const node of http) assert.equal((await get(`http://${node}${path}`)).body, `body of ${path}`)
      for (const node of http) await get(`http://${node}${path}`)
      assert.equal(fetched.get(path), 3, `${path}: one fetch a node`)
    }
  })
  after(async () => {
    await Promise.all([...routers.map((r) => r.stop()), varnishd?.stop(), origin?.close()])
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  /** Each node asked for `path` again: how many fetched it. */
  async function refetches(path: string): Promise<number> {
    const before = fetched.get(path) ?? 0
    for (const node of http) assert.equal((await get(`http://${node}${path}`)).body, `body of ${path}`)
    return (fetched.get(path) ?? 0) - before
  }

  test('-T: a ban, sent as varnishadm sends it, reaches every node', async () => {
    const run = await fanout(['-T', admin.join(','), '-S', secret, 'ban', 'req.url', '~', '^/a$'])
    assert.equal(run.code, 0, run.stderr)
    assert.deepEqual(run.stdout.trim().split('\n'), admin.map((a) => `${a}: 200`))
    assert.equal(await refetches('/a'), 3, 'every node fetched /a again')
    assert.equal(await refetches('/b'), 0, 'the ban touched nothing else')
  })

  test('-a: a PURGE and an xkey purge reach every node', async () => {
    const purge = await fanout(['-a', http.join(','), '/b'])
    assert.equal(purge.code, 0, purge.stderr)
    assert.equal(purge.stdout.trim().split('\n').length, 3)
    for (const line of purge.stdout.trim().split('\n')) assert.match(line, /^127\.0\.0\.1:\d+: 200 /)
    assert.equal(await refetches('/b'), 3)
    const xkey = await fanout(['-a', http.join(','), '-H', 'xkey-purge: group-c', '/'])
    assert.equal(xkey.code, 0, xkey.stderr)
    for (const line of xkey.stdout.trim().split('\n')) assert.match(line, /: 200 Invalidated 1 objects$/)
    assert.equal(await refetches('/c'), 3)
    assert.equal(await refetches('/a'), 0)
  })

  test('a node down or refusing: the others still get the order, and the command exits 1 naming it', async () => {
    // 127.0.0.1:9 (discard) is not listening; a wrong secret is refused by the CLI.
    const down = await fanout(['-T', `${admin[0]},127.0.0.1:9`, '-S', secret, 'ban', 'req.url', '==', '/b'])
    assert.equal(down.code, 1)
    assert.match(down.stdout, new RegExp(`^${admin[0]}: 200$`, 'm'))
    assert.match(down.stdout, /^127\.0\.0\.1:9: cannot reach 127\.0\.0\.1:9/m)
    assert.match(down.stderr, /fanout: 1 of 2 nodes failed/)
    const before = fetched.get('/b') ?? 0
    await get(`http://${http[0]}/b`)
    assert.equal((fetched.get('/b') ?? 0) - before, 1, 'the reachable node applied the ban')
    const wrong = join(dir, 'wrong')
    await writeFile(wrong, 'not the secret\n')
    const refused = await fanout(['-T', admin.join(','), '-S', wrong, 'ping'])
    assert.equal(refused.code, 1)
    assert.equal(refused.stdout.match(/authentication refused/g)?.length, 3, refused.stdout)
  })

  test('usage errors: exit 2 with one line', async () => {
    for (const args of [['-T', admin[0] as string, 'ban', 'req.url', '~', 'x\nban req.url ~ .'], ['ban', 'x'], ['-T', admin[0] as string], ['-T', admin[0] as string, '-a', http[0] as string, 'ping'], ['-a', http[0] as string, 'nopath'], ['-a', http[0] as string, '-X', 'BAD METHOD', '/']]) {
      const run = await fanout(args)
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`)
      assert.match(run.stderr, /^caching-router: fanout: /)
    }
    assert.equal(await refetches('/a'), 0, 'the line break reached no node')
  })
})
