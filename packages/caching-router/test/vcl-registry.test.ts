import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { createRequestContext, VclAdminError, VclError, type VclProgram, VclRegistry } from '../src/vcl/index.js'

// vcl.load / vcl.use / vcl.list / vcl.discard and SIGHUP reloads, on real files.

const ip = { address: '127.0.0.1', port: 1, family: 4 as const }
const ctx = () => createRequestContext({ method: 'GET', url: '/', proto: 'HTTP/1.1', headers: ['Host', 'h'], client: ip, local: ip, xid: '1' })

function vcl(tag: string): string {
  return `vcl 4.1;
backend app { .host = "127.0.0.1"; .port = "3000"; }
sub vcl_recv { set req.http.X-Vcl = "${tag}"; return (hash); }
`
}

async function dir(t: { after: (fn: () => Promise<void>) => void }): Promise<(name: string, text: string) => Promise<string>> {
  const d = await mkdtemp(join(tmpdir(), 'vcl-reg-'))
  t.after(() => rm(d, { recursive: true, force: true }))
  return async (name, text) => {
    const p = join(d, name)
    await writeFile(p, text)
    return p
  }
}

function tagOf(p: VclProgram): string | undefined {
  const c = ctx()
  p.run('recv', c)
  return c.req.http.get('X-Vcl')
}

test('a request keeps the VCL it started with across vcl.use; discard waits for it', async (t) => {
  const file = await dir(t)
  const warmed: string[] = []
  const cooled: string[] = []
  const reg = new VclRegistry({ warm: (p) => warmed.push(p.name), cold: (p) => cooled.push(p.name) })
  t.after(() => reg.close())
  await reg.load('boot', await file('a.vcl', vcl('one')))
  reg.use('boot')
  const inFlight = reg.acquire()
  await reg.load('v2', await file('b.vcl', vcl('two')))
  reg.use('v2')
  assert.equal(tagOf(inFlight), 'one')
  const fresh = reg.acquire()
  assert.equal(tagOf(fresh), 'two')
  assert.equal(reg.list(), 'available   auto    warm         1    boot\nactive      auto    warm         1    v2\n')
  assert.throws(() => reg.discard('v2'), { message: 'Cannot discard active VCL program v2\n', cliStatus: 300 })
  reg.discard('boot')
  assert.deepEqual(cooled, [], 'boot still serves a request')
  reg.release(inFlight)
  assert.deepEqual(cooled, ['boot'])
  reg.release(fresh)
  assert.deepEqual(warmed, ['boot', 'v2'])
  assert.equal(reg.list(), 'active   auto    warm         0    v2\n')
})

test('an invalid file or a failing vcl_init never replaces the running VCL', async (t) => {
  const file = await dir(t)
  const reg = new VclRegistry()
  t.after(() => reg.close())
  await reg.load('boot', await file('a.vcl', vcl('one')))
  reg.use('boot')
  const before = reg.list()
  await assert.rejects(reg.load('bad', await file('bad.vcl', 'vcl 4.1;\nsub vcl_recv { set req.nope = 1; }\n')), VclError)
  await assert.rejects(reg.reload(await file('bad2.vcl', 'vcl 4.1;\nbackend x { .port = "1"; }\n')), VclError)
  await assert.rejects(
    reg.load('initfail', await file('init.vcl', `${vcl('x')}sub vcl_init { return (fail); }\n`)),
    { message: 'VCL "initfail" Failed initialization' },
  )
  await assert.rejects(reg.load('missing', join(tmpdir(), 'no-such-dir-vcl', 'x.vcl')), /Cannot read -f file/)
  await assert.rejects(reg.load('boot', await file('c.vcl', vcl('dup'))), VclAdminError)
  assert.throws(() => reg.use('nothere'), { message: 'No VCL named nothere known\n' })
  assert.equal(reg.list(), before)
  assert.equal(tagOf(reg.acquire()), 'one')
})

test('SIGHUP-style reload loads under a fresh name and switches', async (t) => {
  const file = await dir(t)
  const reg = new VclRegistry()
  t.after(() => reg.close())
  await reg.load('boot', await file('a.vcl', vcl('one')))
  reg.use('boot')
  const p = await reg.reload(await file('a2.vcl', vcl('two')))
  assert.equal(p.name, 'reload_1')
  assert.equal(reg.active, p)
  assert.equal(tagOf(reg.acquire()), 'two')
  assert.equal(reg.show('reload_1'), vcl('two'))
  assert.match(reg.show('boot', true), /^\/\/ VCL\.SHOW .*a\.vcl\nvcl 4\.1;/)
  assert.throws(() => reg.show('nothere'), VclAdminError)
})
