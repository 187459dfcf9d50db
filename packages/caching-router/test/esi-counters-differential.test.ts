import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { freePort } from '@edgestack/common/test/ports'
import { promisify } from 'node:util'
import { esiCases, esiVcl, pathOf, serveEsiCorpus } from './esi-corpus.js'
import { get, sleep, startOrigin } from './router-harness.js'
import { ROUTER_CLI, spawnRouter } from './router-process.js'
import { skipWithoutVarnishd, startVarnishd } from './vcl-varnishd.js'

// MAIN.esi_req, esi_errors and esi_warnings after the same pages (the ESI corpus, its broken
// markup included) went through varnishd 7.1 and the router: read with Debian's varnishstat
// from each one's -n folder, and from ours also as `caching-router stat -j` and /metrics.

const run = promisify(execFile)
const VARNISHSTAT = '/usr/bin/varnishstat'
const ESI_COUNTERS = ['MAIN.esi_req', 'MAIN.esi_errors', 'MAIN.esi_warnings']
// -T and --metrics must be known before the router starts: free ports below the ephemeral range.
const at = (port: number) => ({ host: '127.0.0.1', port })
const ALL_FEATURES = '+esi_ignore_https,+esi_disable_xml_check,+esi_ignore_other_elements,+esi_remove_bom,+esi_include_onerror'


/** `varnishstat -n DIR -1 -f MAIN.esi_*`: name -> value. */
async function esiStats(dir: string): Promise<Record<string, number>> {
  const { stdout } = await run(VARNISHSTAT, ['-n', dir, '-1', '-f', 'MAIN.esi_*'])
  const out: Record<string, number> = {}
  for (const m of stdout.matchAll(/^(MAIN\.\S+)\s+(\d+)/gm)) out[m[1] as string] = Number(m[2])
  return out
}

function send(port: number, path: string, method: string, headers: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers: { Host: 'esi.test', ...headers }, agent: false }, (res) => {
      res.resume()
      res.on('close', () => resolve())
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')))
    req.end()
  })
}

for (const features of ['default', ALL_FEATURES]) {
  test(`ESI counters in varnishstat: the same as varnishd on the corpus (feature=${features})`, { skip: skipWithoutVarnishd, timeout: 120_000 }, async (t) =>
    compare(t, features, at(await freePort()), at(await freePort())),
  )
}

async function compare(t: TestContext, features: string, ADMIN: HostPort, METRICS: HostPort): Promise<void> {
  if (!existsSync(VARNISHSTAT)) assert.fail('varnishstat is not installed (apt-get install varnish)')
  const origin = await startOrigin(t, serveEsiCorpus)
  const text = esiVcl(origin.address.port)
  const varnishd = await startVarnishd(text, ['-p', `feature=${features}`])
  t.after(() => varnishd.stop())
  const dir = await mkdtemp(join(tmpdir(), 'esi-vsc-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'esi.vcl')
  await writeFile(file, text)
  const router = await spawnRouter([
    '-n',
    join(dir, 'n'),
    '-a',
    '127.0.0.1:0',
    '-f',
    file,
    '-T',
    `${ADMIN.host}:${ADMIN.port}`,
    '--metrics',
    `${METRICS.host}:${METRICS.port}`,
    '-p',
    `feature=${features}`,
  ])
  t.after(() => router.stop())

  for (const port of [varnishd.port, router.port]) {
    // Each page twice: parsed on the miss only; every include is a sub-request both times.
    for (const _round of [1, 2]) for (const c of esiCases) await send(port, pathOf(c), c.method ?? 'GET', c.request)
    // A pass with do_esi is parsed at each fetch: warnings counted twice.
    for (const _round of [1, 2]) await send(port, '/p/include-no-slash', 'POST')
  }

  const theirs = await esiStats(varnishd.workdir)
  // Both publish their counters from time to time: read until they agree (at most 50 reads).
  let ours = await esiStats(join(dir, 'n'))
  for (let i = 0; i < 50 && JSON.stringify(ours) !== JSON.stringify(theirs); i++) {
    await sleep(100)
    ours = await esiStats(join(dir, 'n'))
  }
  assert.deepEqual(ours, theirs)
  // The corpus has broken markup and nested includes: none of the three is left at zero.
  for (const name of ESI_COUNTERS) assert.ok((theirs[name] ?? 0) > 0, `${name} is ${theirs[name]}`)

  // `caching-router stat -j` describes them as varnishstat -j does.
  const stat = JSON.parse((await run(process.execPath, [ROUTER_CLI, 'stat', '-T', `${ADMIN.host}:${ADMIN.port}`, '-j'])).stdout) as {
    counters: Record<string, unknown>
  }
  const real = JSON.parse((await run(VARNISHSTAT, ['-n', varnishd.workdir, '-j', '-f', 'MAIN.esi_*'])).stdout) as { counters: Record<string, unknown> }
  for (const name of ESI_COUNTERS) assert.deepEqual(stat.counters[name], real.counters[name], name)

  // Prometheus: prometheus_varnish_exporter's names.
  const scrape = (await get(`http://${METRICS.host}:${METRICS.port}/metrics`)).body
  for (const name of ESI_COUNTERS) {
    const metric = `varnish_main_${name.slice('MAIN.'.length)}`
    assert.match(scrape, new RegExp(`^${metric} ${theirs[name]}$`, 'm'), metric)
  }
}
