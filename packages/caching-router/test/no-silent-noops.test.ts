import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { PARAM_NAMES } from '../src/params.js'
import { lookupVariable, variableNames } from '../src/vcl/variables.js'
import { get, sleep, startOrigin } from './router-harness.js'
import { ROUTER_CLI } from './router-process.js'
import { startVclRouter } from './router-vcl-harness.js'

// The table walk: every parameter and VCL variable the router accepts is implemented,
// refused at load, or listed in the README as a documented no-op. A name added to a table
// without one of the three fails here.

const run = promisify(execFile)
const PKG = fileURLToPath(new URL('../../', import.meta.url))
const readme = await readFile(join(PKG, 'README.md'), 'utf8')
const noopSection = readme.slice(readme.indexOf('## No silent no-ops'), readme.indexOf('Not (yet) varnishd:'))
const documented = (name: string) => noopSection.includes(`\`${name}\``)

/** Parameters whose value the router reads (checked below against the source). */
const PARAMS_IMPLEMENTED = [
  'default_ttl',
  'default_grace',
  'default_keep',
  'http_req_hdr_len',
  'http_req_size',
  'http_max_hdr',
  'timeout_idle',
  'pipe_timeout',
  'first_byte_timeout',
  'between_bytes_timeout',
  'connect_timeout',
  'backend_idle_timeout',
  'max_restarts',
  'max_retries',
  'pcre2_match_limit',
  'pcre2_depth_limit',
  'pcre2_jit_compilation',
  'targeted_cache_control',
  'max_esi_depth',
  'http_gzip_support',
  'gzip_level',
  'gzip_memlevel',
  'gzip_buffer',
  'http_resp_hdr_len',
  'http_resp_size',
  // HTTP/2 (src/h2/, README "HTTP/2"; test/h2-attacks.test.ts and h2-differential.test.ts).
  'h2_header_table_size',
  'h2_initial_window_size',
  'h2_max_concurrent_streams',
  'h2_max_frame_size',
  'h2_max_header_list_size',
  'h2_rx_window_increment',
  'h2_rx_window_low_water',
  'h2_rapid_reset',
  'h2_rapid_reset_limit',
  'h2_rapid_reset_period',
  'idle_send_timeout',
]

/** How the router reads a parameter that is not a number (`params.get` is for numbers). */
const READERS: Record<string, string> = { targeted_cache_control: 'params.targets' }

/** Variables with their varnishd meaning (the behaviour tests in this folder exercise them). */
const VARIABLES_IMPLEMENTED = [
  'req.method', 'req.url', 'req.proto', 'req.backend_hint', 'req.restarts', 'req.xid', 'req.ttl', 'req.grace',
  'req.hash_always_miss', 'req.hash_ignore_busy', 'bereq.method', 'bereq.url', 'bereq.proto', 'bereq.backend',
  'bereq.uncacheable', 'bereq.xid', 'bereq.retries', 'bereq.is_bgfetch', 'bereq.connect_timeout',
  'bereq.first_byte_timeout', 'bereq.between_bytes_timeout', 'bereq.body', 'beresp.proto', 'beresp.status',
  'beresp.reason', 'beresp.ttl', 'beresp.grace', 'beresp.keep', 'beresp.uncacheable', 'beresp.age', 'beresp.was_304',
  'beresp.backend.name', 'beresp.body', 'resp.proto', 'resp.status', 'resp.reason', 'resp.body', 'obj.proto',
  'obj.status', 'obj.reason', 'obj.ttl', 'obj.grace', 'obj.keep', 'obj.age', 'obj.hits', 'obj.uncacheable', 'obj.time',
  'client.ip', 'server.ip', 'local.ip', 'remote.ip', 'now', 'server.hostname', 'server.identity', 'client.identity',
  'req.backend.healthy', 'beresp.do_stream', 'req.hash', 'bereq.hash', 'beresp.backend',
  // ESI (esi-differential.test.ts, router-esi.test.ts).
  'req.esi_level', 'beresp.do_esi', 'beresp.do_gzip', 'beresp.do_gunzip', 'resp.do_esi', 'obj.can_esi', 'req.esi', 'req_top.method', 'req_top.url', 'req_top.proto',
  'req.time', 'req_top.time',
]

async function sources(dir: string): Promise<string> {
  let out = ''
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts')) out += await readFile(join(e.parentPath, e.name), 'utf8')
  }
  return out
}

describe('no silent no-ops in caching-router', () => {
  test('every -p parameter is read by the router or documented as a no-op', async () => {
    const src = await sources(join(PKG, 'src'))
    for (const name of PARAM_NAMES) {
      if (PARAMS_IMPLEMENTED.includes(name)) {
        const reader = READERS[name]
        const read = reader !== undefined ? src.includes(reader) : src.includes(`params.get('${name}')`) || src.includes(`this.get('${name}')`)
        assert.ok(read, `${name} is said to be implemented but nothing reads it`)
      } else assert.ok(documented(name), `-p ${name} is accepted but neither read nor listed in the README`)
    }
  })

  test('every VCL variable is implemented, refused when set, or documented', () => {
    for (const name of variableNames()) {
      const spec = lookupVariable(name, name === 'req.backend.healthy' ? '3.0' : '4.1') ?? lookupVariable(name, '4.0')
      assert.ok(spec, name)
      const refused = spec.unsupported !== undefined
      assert.ok(
        VARIABLES_IMPLEMENTED.includes(name) || refused || documented(name),
        `${name} is neither implemented, refused nor documented in the README`,
      )
      if (refused) assert.ok(documented(name), `${name} is refused but the README does not say so`)
    }
  })

  const compile = async (body: string) => {
    const dir = await mkdtemp(join(tmpdir(), 'noop-'))
    try {
      const file = join(dir, 't.vcl')
      await writeFile(file, `vcl 4.1;\nbackend b { .host = "127.0.0.1"; .port = "9"; }\nsub vcl_backend_response {\n    ${body}\n}\n`)
      return await run(process.execPath, [ROUTER_CLI, '-C', '-f', file]).then(
        (r) => ({ code: 0, stderr: r.stderr }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      )
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  // do_stream = false holds a stored object until its body is complete (varnishtest b00021,
  // in vtc.test.ts, fails without it); a pass still streams (README).
  test('set beresp.do_stream = false and = true compile', async () => {
    assert.equal((await compile('set beresp.do_stream = false;')).code, 0)
    assert.equal((await compile('set beresp.do_stream = true;')).code, 0)
  })

  test('-p feature=: a bit we do not act on, or an unknown one, is refused in one line before anything listens', async () => {
    for (const [value, message] of [
      ['+https_scheme', /^caching-router: feature=\+https_scheme: "\+https_scheme" is not supported by caching-router/],
      ['+nosuch', /^caching-router: Unknown feature bit \(\+nosuch\)\n/],
    ] as const) {
      const r = await run(process.execPath, [ROUTER_CLI, '-b', '127.0.0.1:9', '-a', '127.0.0.1:0', '-p', `feature=${value}`]).catch(
        (e: { code: number; stderr: string }) => e,
      )
      assert.equal((r as { code?: number }).code, 2, value)
      assert.match(r.stderr, message)
    }
  })

  test('-p h2_rxbuf_storage names the one storage there is: another is refused in varnishd words', async () => {
    const r = await run(process.execPath, [ROUTER_CLI, '-b', '127.0.0.1:9', '-a', '127.0.0.1:0', '-p', 'h2_rxbuf_storage=s0']).catch(
      (e: { code: number; stderr: string }) => e,
    )
    assert.equal((r as { code?: number }).code, 2)
    assert.match(r.stderr, /^caching-router: unknown storage backend 's0'\n/)
  })

  test('-p workspace_client keeps varnishd bounds', async () => {
    const bad = await run(process.execPath, [ROUTER_CLI, '-b', '127.0.0.1:9', '-p', 'workspace_client=1k']).catch((e: { code: number; stderr: string }) => e)
    assert.match(bad.stderr, /Must be at least 9k\n\n\(attempting to set param 'workspace_client' to '1k'\)/)
  })

  test('beresp.was_304 is true on a revalidation answered 304', async (t) => {
    const origin = await startOrigin(t, (req, res) => {
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { ETag: '"v1"' })
        res.end()
        return
      }
      res.writeHead(200, { ETag: '"v1"', 'Content-Length': 2 })
      res.end('ok')
    })
    const r = await startVclRouter(`vcl 4.1;
backend b { .host = "127.0.0.1"; .port = "${origin.address.port}"; }
sub vcl_backend_response { set beresp.ttl = 0.05s; set beresp.grace = 0s; set beresp.keep = 60s; set beresp.http.x-was-304 = beresp.was_304; }
`)
    t.after(() => r.stop())
    assert.equal((await get(`${r.url}/a`)).headers['x-was-304'], 'false')
    await sleep(150)
    const again = await get(`${r.url}/a`)
    assert.equal(again.body, 'ok')
    assert.equal(again.headers['x-was-304'], 'true')
  })
})
