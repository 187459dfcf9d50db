// docs/multi-machine.md's sharded cache layout, deploy/multi-machine/edge-shard.vcl: varnishd
// and caching-router both compile it (-C).
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { promisify } from 'node:util'
import { programMissing } from './layers.js'
import { REPO, runCli } from './processes.js'

const VCL = join(REPO, 'deploy', 'multi-machine', 'edge-shard.vcl')
const missing = await programMissing('/usr/sbin/varnishd', 'varnish')

describe('the sharded edge VCL of docs/multi-machine.md', () => {
  test('varnishd -C compiles it', { skip: missing && !process.env.CI ? `SKIPPED: ${missing}` : false }, async (t) => {
    assert.equal(missing, undefined, missing)
    const dir = await mkdtemp(join(tmpdir(), 'edgestack-shard-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    // As root, varnishd compiles as its own unprivileged user: it must be able to write here.
    await chmod(dir, 0o755)
    // varnishd -C writes the generated C on stderr.
    const { stderr: stdout } = await promisify(execFile)('/usr/sbin/varnishd', ['-C', '-n', dir, '-f', VCL], { maxBuffer: 64 << 20 })
    // The compiled C names the director and the three peers it shards over.
    assert.match(stdout, /vmod_directors/)
    for (const peer of ['edge1', 'edge2', 'edge3']) assert.match(stdout, new RegExp(`\\b${peer}\\b`))
  })

  test('caching-router -C compiles it', async () => {
    const r = await runCli('caching-router', ['-C', '-f', VCL])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /director cluster shard/)
  })
})
