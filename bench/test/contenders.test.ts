import assert from 'node:assert/strict'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { ensureDevCertificates } from '@edgestack/tls-terminator'
import { findPrograms } from '../groups.js'
import { startCachingRouter, startVarnishd } from '../layers/router.js'
import { type BenchContext, type Server, startNodePeer, stopAll } from '../layers/server.js'
import { startNginx, startStaticServer } from '../layers/static.js'
import { startStunnel, startTlsTerminator } from '../layers/tls.js'
import { originCount, probe } from '../load/probe.js'
import { REPO } from '../templates.js'

// The harness is only fair if ours and theirs, started by its adapters from the same generated
// file, answer the scenarios' requests alike. These start the real programs where installed.

const programs = await findPrograms()
const KIB = { status: 200, bodyBytes: 1024 }

async function context(t: { after(fn: () => Promise<void>): void }): Promise<BenchContext> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-test-'))
  t.after(async () => {
    await stopAll()
    await rm(dir, { recursive: true, force: true })
  })
  const root = join(dir, 'root')
  await mkdir(root)
  await writeFile(join(root, '1k.css'), Buffer.alloc(1024, 'b'))
  await chmod(dir, 0o755)
  await chmod(root, 0o755)
  const { files } = await ensureDevCertificates(join(REPO, '.certs'))
  return { dir, root, cert: files.cert, key: files.key, serverCpus: undefined, loadCpus: undefined, oursFrom: 'auto', stunnelDebug: 5 }
}

test('static-server and nginx from one nginx.conf: the file, and try_files falling back to the app', async (t) => {
  const ctx = await context(t)
  const origin = await startNodePeer(ctx, 'origin', 'origin', [])
  const servers: Server[] = [await startStaticServer(ctx, origin.port)]
  if (programs.path.nginx) servers.push(await startNginx(ctx, programs.path.nginx, origin.port))
  else t.diagnostic('nginx is not installed: only ours checked')
  for (const s of servers) {
    assert.equal(await probe(`http://127.0.0.1:${s.port}/1k.css`, KIB), undefined, s.name)
    const before = await originCount(origin.port)
    assert.equal(await probe(`http://127.0.0.1:${s.port}/not-a-file`, KIB), undefined, s.name)
    assert.equal(await originCount(origin.port), before + 1, `${s.name} sent the miss to @proxy`)
  }
})

test('caching-router and varnishd from one VCL: passes reach the origin; varnishd serves hits itself', async (t) => {
  const ctx = await context(t)
  const origin = await startNodePeer(ctx, 'origin', 'origin', [])
  const backends = { nginxPort: origin.port, nodePort: origin.port }
  const servers: Server[] = [await startCachingRouter(ctx, backends)]
  if (programs.path.varnishd) servers.push(await startVarnishd(ctx, programs.path.varnishd, backends))
  else t.diagnostic('varnishd is not installed: only ours checked')
  for (const s of servers) {
    const before = await originCount(origin.port)
    for (let i = 0; i < 3; i++) assert.equal(await probe(`http://127.0.0.1:${s.port}/pass-1k`, KIB), undefined, s.name)
    assert.equal(await originCount(origin.port), before + 3, `${s.name} passed every uncacheable request`)
  }
  const varnish = servers.find((s) => s.name === 'varnishd')
  if (varnish) {
    const before = await originCount(origin.port)
    for (let i = 0; i < 3; i++) assert.equal(await probe(`http://127.0.0.1:${varnish.port}/cache-1k.css`, KIB), undefined)
    assert.equal(await originCount(origin.port), before + 1, 'scenario 3 measures hits: one miss, then hits')
  }
})

test('tls-terminator and stunnel from one stunnel.conf: https to the origin', async (t) => {
  const ctx = await context(t)
  const origin = await startNodePeer(ctx, 'origin', 'origin', [])
  const servers: Server[] = [await startTlsTerminator(ctx, origin.port)]
  if (programs.path.stunnel) servers.push(await startStunnel(ctx, programs.path.stunnel, origin.port))
  else t.diagnostic('stunnel is not installed: only ours checked')
  for (const s of servers) assert.equal(await probe(`https://127.0.0.1:${s.port}/x`, KIB), undefined, s.name)
})
