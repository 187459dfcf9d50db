import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import type { ReqObj } from '../src/policy.js'
import { VclRegistry } from '../src/vcl/index.js'
import { vclRouterParts } from '../src/vcl-policy.js'

// VclPolicy.hash(): hash_data() parts joined by NUL as they come, as the array join did.
test('VclPolicy.hash joins the hash_data parts of each run by NUL, anew per run and per request', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vcl-policy-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'hash.vcl')
  await writeFile(
    file,
    `vcl 4.1;
backend app { .host = "127.0.0.1"; .port = "3000"; }
sub vcl_hash {
  if (req.http.X-None) { return (lookup); }
  hash_data(req.url);
  if (req.http.X-Extra) { hash_data(req.http.X-Extra); hash_data(""); }
}
`,
  )
  const registry = new VclRegistry()
  await registry.load('boot', file)
  registry.use('boot')
  const { policy } = vclRouterParts(registry)
  const req = (url: string, headers: string[]): ReqObj => ({
    method: 'GET',
    url,
    proto: 'HTTP/1.1',
    headers: ['Host', 'example.com', ...headers],
    backendHint: '',
    xid: 1,
    clientIp: '127.0.0.1',
    serverIp: '127.0.0.1',
    hashAlwaysMiss: false,
    hashIgnoreBusy: false,
  })
  const hashOf = (r: ReqObj) => {
    assert.equal(policy.recv(r), 'hash')
    const key = policy.hash(r)
    policy.done(r)
    return key
  }
  // vcl_hash falls through into builtin's, which adds the URL and Host again.
  assert.equal(hashOf(req('/a', [])), '/a\0/a\0example.com')
  assert.equal(hashOf(req('/a', ['X-Extra', 'e'])), '/a\0e\0\0/a\0example.com')
  assert.equal(hashOf(req('/a', ['X-None', '1'])), '')
  // A second hash of the same request (the router's RFC 9111 §4.4 invalidation) starts afresh.
  const r = req('/b', [])
  policy.recv(r)
  assert.equal(policy.hash(r), '/b\0/b\0example.com')
  r.url = '/c'
  assert.equal(policy.hash(r), '/c\0/c\0example.com')
  policy.done(r)
})
