import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import type { BereqObj, BerespObj, ReqObj } from '../src/policy.js'
import { VclRegistry } from '../src/vcl/index.js'
import { VclPolicy } from '../src/vcl-policy.js'

// VclPolicy against a VCL file of BACKENDS and the subroutines each test adds.
const BACKENDS = `
backend app { .host = "127.0.0.1"; .port = "3000"; .first_byte_timeout = 7s; .between_bytes_timeout = 3s; }
backend files { .host = "127.0.0.1"; .port = "8081"; }
sub vcl_recv { if (req.url ~ "^/files/") { set req.backend_hint = files; } }
`

/** A VclPolicy for `text` after `vcl 4.1;` and BACKENDS, loaded from a file in `dir`. */
async function policyOf(dir: string, name: string, text: string): Promise<VclPolicy> {
  const file = join(dir, `${name}.vcl`)
  await writeFile(file, `vcl 4.1;\n${BACKENDS}\n${text}\n`)
  const registry = new VclRegistry()
  await registry.load(name, file)
  registry.use(name)
  return new VclPolicy(registry)
}

function reqOf(url: string, headers: string[] = []): ReqObj {
  return {
    method: 'GET',
    url,
    proto: 'HTTP/1.1',
    headers: ['Host', 'example.com', ...headers],
    xid: 1,
    clientIp: '127.0.0.1',
    serverIp: '127.0.0.1',
    hashAlwaysMiss: false,
    hashIgnoreBusy: false,
  }
}

function bereqOf(r: ReqObj, method: string, uncacheable: boolean): BereqObj {
  return {
    method,
    url: r.url,
    proto: 'HTTP/1.1',
    headers: ['Host', 'example.com', 'X-Varnish', '2'],
    backend: undefined,
    uncacheable,
    xid: 2,
    isBgfetch: false,
    bodyUnset: false,
    policyState: r.policyState,
  }
}

// VclPolicy.hash(): hash_data() parts joined by NUL as they come, as the array join did.
test('VclPolicy.hash joins the hash_data parts of each run by NUL, anew per run and per request', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vcl-policy-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const policy = await policyOf(
    dir,
    'hash',
    `sub vcl_hash {
  if (req.http.X-None) { return (lookup); }
  hash_data(req.url);
  if (req.http.X-Extra) { hash_data(req.http.X-Extra); hash_data(""); }
}`,
  )
  const req = reqOf
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

interface Shape {
  headers: string[]
  ttl: number
  grace: number
  keep: number
  uncacheable: boolean
}

const HEADER_SETS: string[][] = [
  [],
  ['Set-Cookie', 'a=1'],
  ['set-cookie', ''],
  ['Cache-Control', 'private'],
  ['Cache-Control', 'no-cache'],
  ['cache-control', 'public, NO-STORE'],
  ['Cache-Control', 'public, max-age=60'],
  ['Cache-Control', 'max-age=60', 'Cache-Control', 'private'],
  ['Surrogate-Control', 'no-store'],
  ['Surrogate-Control', 'max-age=60', 'Cache-Control', 'private'],
  ['Surrogate-Control', '', 'Cache-Control', 'no-store'],
  ['Vary', '*'],
  ['vary', 'Accept, *'],
  ['Vary', 'Accept'],
  ['Vary', 'Accept', 'Vary', '*'],
  ['Vary', '*', 'Vary', 'Accept'],
]

function* shapes(): Generator<Shape> {
  for (const headers of HEADER_SETS) {
    for (const ttl of [-1, 0, 60]) {
      for (const keep of [0, 10]) {
        for (const uncacheable of [false, true]) yield { headers, ttl, grace: 10, keep, uncacheable }
      }
    }
  }
}

// When the user's VCL leaves vcl_backend_fetch or vcl_backend_response to builtin.vcl, VclPolicy
// does what builtin.vcl does in TypeScript instead of running the compiled subroutine. These
// tests hold the two to the same results: the same VCL with an empty user subroutine (which
// falls through into builtin.vcl, so the compiled code runs) must decide exactly as the native
// path does, for every response shape below.

describe('builtin.vcl natively: the same decisions as the compiled builtin.vcl', () => {
  let dir = ''
  let native: VclPolicy
  let compiled: VclPolicy

  test('set up', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vcl-native-'))
    native = await policyOf(dir, 'native', '')
    compiled = await policyOf(dir, 'compiled', 'sub vcl_backend_fetch { }\nsub vcl_backend_response { }')
    for (const m of ['backend_fetch', 'backend_response'] as const) {
      assert.equal(native.registry.active?.isBuiltinOnly(m), true, m)
      assert.equal(compiled.registry.active?.isBuiltinOnly(m), false, m)
    }
  })

  test('vcl_backend_fetch: body, backend and timeouts, for a fetch and a pass, a GET and a POST', () => {
    for (const url of ['/', '/files/a.css']) {
      for (const method of ['GET', 'POST', 'HEAD']) {
        for (const uncacheable of [false, true]) {
          const results = [native, compiled].map((policy) => {
            const r = reqOf(url)
            policy.recv(r)
            const bereq = bereqOf(r, method, uncacheable)
            const action = policy.backendFetch(bereq)
            policy.done(r)
            const { policyState: _, ...rest } = bereq
            return { action, ...rest }
          })
          assert.deepEqual(results[0], results[1], `${method} ${url} uncacheable=${uncacheable}`)
          assert.equal(results[0]?.bodyUnset, method === 'GET')
        }
      }
    }
  })

  test('vcl_backend_response: ttl, grace, keep and uncacheable for every response shape', () => {
    let hitForMiss = 0
    let cases = 0
    for (const shape of shapes()) {
      for (const bereqUncacheable of [false, true]) {
        const results = [native, compiled].map((policy) => {
          const r = reqOf('/')
          policy.recv(r)
          const bereq = bereqOf(r, 'GET', bereqUncacheable)
          policy.backendFetch(bereq)
          const beresp: BerespObj = { status: 200, reason: 'OK', proto: 'HTTP/1.1', ...shape, headers: [...shape.headers] }
          const action = policy.backendResponse(bereq, beresp)
          policy.done(r)
          return { action, ...beresp }
        })
        const label = JSON.stringify({ ...shape, bereqUncacheable })
        assert.deepEqual(results[0], results[1], label)
        cases++
        if (!bereqUncacheable && results[0]?.ttl === 120 && results[0].uncacheable) hitForMiss++
      }
    }
    // The corpus reaches both outcomes, so the comparison is not between two no-ops.
    assert.ok(hitForMiss > 0 && hitForMiss < cases / 2, `${hitForMiss} of ${cases} hit-for-miss`)
  })

  test('vcl_backend_error still runs after a native vcl_backend_fetch, with its bereq', () => {
    const r = reqOf('/')
    native.recv(r)
    const bereq = bereqOf(r, 'GET', false)
    native.backendFetch(bereq)
    const beresp: BerespObj & { body?: string } = { status: 503, reason: 'Backend fetch failed', proto: 'HTTP/1.1', headers: [], ttl: 0, grace: 0, keep: 0, uncacheable: true }
    native.backendError(bereq, beresp)
    native.done(r)
    assert.match(beresp.body ?? "", /XID: 2</)
  })

  test('a user sub that builtin.vcl calls (vcl_beresp_cookie) makes vcl_backend_response the user\'s', async () => {
    const policy = await policyOf(dir, 'cookie', 'sub vcl_beresp_cookie { if (beresp.http.Set-Cookie ~ "^ok=") { return (deliver); } }')
    const outcome = (cookie: string) => {
      const r = reqOf('/')
      policy.recv(r)
      const bereq = bereqOf(r, 'GET', false)
      policy.backendFetch(bereq)
      const beresp: BerespObj = { status: 200, reason: 'OK', proto: 'HTTP/1.1', headers: ['Set-Cookie', cookie], ttl: 60, grace: 10, keep: 0, uncacheable: false }
      policy.backendResponse(bereq, beresp)
      policy.done(r)
      return { ttl: beresp.ttl, uncacheable: beresp.uncacheable }
    }
    assert.deepEqual(outcome('ok=1'), { ttl: 60, uncacheable: false })
    assert.deepEqual(outcome('session=1'), { ttl: 120, uncacheable: true })
  })

  test('tear down', () => rm(dir, { recursive: true, force: true }))
})
