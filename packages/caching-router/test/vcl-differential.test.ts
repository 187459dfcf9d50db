import { execFile } from 'node:child_process'
import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { checkVclFile, VclError } from '../src/vcl/index.js'
import { VARNISHD, varnishInstalled, varnishWorkdir } from './vcl-varnishd.js'

// A corpus checked by both varnishd's compiler (`varnishd -C -f FILE`) and ours: both must
// accept the valid files and both must reject the invalid ones.
const FIXTURES = fileURLToPath(new URL('../../test/fixtures/vcl/', import.meta.url))
const CONFIG = fileURLToPath(new URL('../../../../config/', import.meta.url))
const haveVarnishd = varnishInstalled

async function files(dir: string): Promise<string[]> {
  return (await readdir(join(FIXTURES, dir))).filter((f) => f.endsWith('.vcl')).sort().map((f) => join(FIXTURES, dir, f))
}

function varnishdCheck(file: string, workdir: string): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(VARNISHD, ['-C', '-n', workdir, '-f', file], { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 }, (err, _stdout, stderr) => {
      const message = stderr.slice(stderr.indexOf('Message from VCC-compiler:'))
      resolve({ ok: !err, output: err ? message : '' })
    })
  })
}

async function ourCheck(file: string): Promise<{ ok: boolean; output: string }> {
  try {
    await checkVclFile(file)
    return { ok: true, output: '' }
  } catch (err) {
    assert.ok(err instanceof VclError, `${file}: expected a VclError, got ${String(err)}`)
    return { ok: false, output: err.message }
  }
}

const valid = [...(await files('valid')), join(CONFIG, 'default.vcl')]
const invalid = await files('invalid')
const dialect3 = [...(await files('dialect-3.0')), join(CONFIG, 'default-3.0.vcl')]

describe('VCL differential compile: caching-router vs varnishd -C', { concurrency: 1 }, () => {
  let workdir = ''

  test('setup', async () => {
    workdir = await varnishWorkdir('vcl-diff-')
  })

  for (const file of valid) {
    test(`accepts ${file.slice(file.lastIndexOf('/') + 1)}`, async (t) => {
      const ours = await ourCheck(file)
      assert.equal(ours.ok, true, `caching-router rejected a valid file:\n${ours.output}`)
      if (!haveVarnishd) return t.skip('varnishd not installed at /usr/sbin/varnishd')
      const theirs = await varnishdCheck(file, workdir)
      assert.equal(theirs.ok, true, `varnishd rejected it (the fixture is wrong):\n${theirs.output}`)
    })
  }

  for (const file of invalid) {
    test(`rejects ${file.slice(file.lastIndexOf('/') + 1)}`, async (t) => {
      const ours = await ourCheck(file)
      assert.equal(ours.ok, false, 'caching-router accepted an invalid file')
      assert.match(ours.output, /^\/.+\.vcl:\d+:\d+: /, 'error starts with file:line:col')
      assert.match(ours.output, /\n.*\n *\^~*/, 'error shows the source line and a caret')
      if (!haveVarnishd) return t.skip('varnishd not installed at /usr/sbin/varnishd')
      const theirs = await varnishdCheck(file, workdir)
      assert.equal(theirs.ok, false, 'varnishd accepted it (the fixture is wrong)')
      // Same wording and same place as varnishd's compiler.
      const problem = (ours.output.split('\n')[0] as string).replace(/^.*?\.vcl:\d+:\d+: /, '')
      assert.ok(theirs.output.includes(problem), `varnishd words it differently:\n${theirs.output}\nours:\n${ours.output}`)
      const where = /Line (\d+) Pos (\d+)/.exec(theirs.output)
      const at = /\.vcl:(\d+):(\d+): /.exec(ours.output)
      assert.deepEqual(at?.slice(1, 3), where?.slice(1, 3), `varnishd points elsewhere:\n${theirs.output}\nours:\n${ours.output}`)
    })
  }

  // varnishd 4+ refuses files without a `vcl` line; we read them as varnish 3 on purpose.
  for (const file of dialect3) {
    test(`reads ${file.slice(file.lastIndexOf('/') + 1)} as VCL 3.0 where varnishd refuses it`, async (t) => {
      const ours = await ourCheck(file)
      assert.equal(ours.ok, true, `caching-router rejected a 3.0 file:\n${ours.output}`)
      if (!haveVarnishd) return t.skip('varnishd not installed at /usr/sbin/varnishd')
      const theirs = await varnishdCheck(file, workdir)
      assert.equal(theirs.ok, false)
      assert.match(theirs.output, /VCL version declaration missing/)
    })
  }

  test('cleanup', async () => {
    if (workdir) await rm(workdir, { recursive: true, force: true })
  })
})
