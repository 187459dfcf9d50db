import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { parseRouterCommandLine } from '../src/config/command-line.js'
import { articleVcl } from '../src/config/flags-vcl.js'
import type { CliModel } from '../src/config/model.js'
import { compileVcl } from '../src/vcl/index.js'

const ROOT = new URL('../../../../', import.meta.url)

function deeplyFrozen(value: unknown, path = 'model'): void {
  if (value === null || typeof value !== 'object') return
  assert.ok(Object.isFrozen(value), `${path} is frozen`)
  for (const [k, v] of Object.entries(value)) {
    assert.notEqual(typeof v, 'function', `${path}.${k} is data, not behaviour`)
    deeplyFrozen(v, `${path}.${k}`)
  }
}

test('--static-backend/--app-backend stand for config/default.vcl with one app instance, with their addresses', async () => {
  // config/default.vcl reaches the app through a hash director over one backend per instance
  // (app1, ... with a probe); the flags name one app address, the article's own form: the same
  // file with the app's backend declared directly.
  const file = await readFile(new URL('config/default.vcl', ROOT), 'utf8')
  const flags = articleVcl({ host: '127.0.0.1', port: 8081 }, { host: '127.0.0.1', port: 3000 })
  const routes = (text: string) => text.slice(text.indexOf('sub vcl_recv')).replace('app.backend(client.identity)', 'node')
  assert.equal(routes(flags), routes(file))
  assert.match(file, /^backend app1 \{\s+\.host = "127\.0\.0\.1";\s+\.port = "3000";/m)
  assert.match(flags, /^backend node \{\s+\.host = "127\.0\.0\.1";\s+\.port = "3000";\s+\}/m)
  const model = parseRouterCommandLine(['--static-backend', '127.0.0.1:9081', '--app-backend', '10.0.0.2:4000'])
  assert.equal(model.vcl.kind, 'text')
  const text = model.vcl.kind === 'text' ? model.vcl.text : ''
  const backends = [...compileVcl({ name: 'flags', text }).backends.values()].map((b) => `${b.name} ${b.host}:${b.port}`)
  assert.deepEqual(backends, ['node 10.0.0.2:4000', 'nginx 127.0.0.1:9081'])
  // Without any of -b, -f and the article flags: the article's routing on the development ports.
  const plain = parseRouterCommandLine([])
  assert.equal(plain.vcl.kind === 'text' ? plain.vcl.text : '', flags)
})

test('-b HOST:PORT is varnishd\'s text: one backend named default, builtin.vcl for the rest', () => {
  const model: CliModel = parseRouterCommandLine(['-a', '127.0.0.1:0', '-b', '[::1]:8080', '-p', 'default_ttl=5', '-T', ':6082', '-S', '/s'])
  assert.deepEqual(model.vcl, {
    kind: 'text',
    name: '<-b argument>',
    text: 'vcl 4.1;\n\nbackend default {\n    .host = "::1";\n    .port = "8080";\n}\n',
  })
  const compiled = compileVcl({ name: '<-b argument>', text: model.vcl.kind === 'text' ? model.vcl.text : '' })
  assert.equal(compiled.defaultBackend?.name, 'default')
  for (const m of ['recv', 'hash', 'hit', 'miss', 'deliver', 'backend_fetch', 'backend_response'] as const) {
    assert.ok(compiled.builtinOnly.has(m), `vcl_${m} is builtin.vcl's`)
  }
  assert.deepEqual(model.params, [['default_ttl', '5']])
  assert.deepEqual(model.admin, { address: { host: '127.0.0.1', port: 6082 }, secretFile: '/s' })
  deeplyFrozen(model)
  deeplyFrozen(parseRouterCommandLine(['-f', 'x.vcl']))
})
