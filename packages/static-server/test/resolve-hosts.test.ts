import assert from 'node:assert/strict'
import { lookup } from 'node:dns/promises'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadNginxConf } from '../src/config/nginx-conf.js'
import { withAddresses } from '../src/config/resolve-hosts.js'

/**
 * nginx resolves an upstream server's host name once, when it reads the file, and makes one
 * peer per address: a compose service scaled to three is three peers ip_hash and hash can
 * stick to, not one name resolved again on every connection.
 */
test('an upstream server named by host is one peer per address, resolved at load', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'resolve-hosts-'))
  const file = join(dir, 'nginx.conf')
  await writeFile(
    file,
    `pid ${dir}/nginx.pid; error_log ${dir}/error.log; events {}
http { access_log off; upstream app { ip_hash; server localhost:3000 weight=2; server 127.0.0.1:3001; }
  server { listen 127.0.0.1:1; location / { proxy_pass http://app; } } }
`,
  )
  const model = await loadNginxConf({ file, prefix: dir })
  const servers = model.upstreams.get('app')?.servers ?? []
  const local = (await lookup('localhost', { all: true })).map((a) => a.address)
  assert.deepEqual(
    servers.map((s) => [s.name, s.host, s.port, s.weight]),
    [...local.map((a) => ['localhost:3000', a, 3000, 2]), ['127.0.0.1:3001', '127.0.0.1', 3001, 1]],
  )
  assert.ok(Object.isFrozen(model.upstreams.get('app')?.servers[0]))

  // Three addresses for one name (a scaled service): three peers, the name as written kept.
  const app = model.upstreams.get('app')
  assert.ok(app)
  const named = { ...model, upstreams: new Map([['app', { ...app, servers: [{ ...(app.servers[0] as (typeof app.servers)[number]), host: 'localhost' }, app.servers.at(-1) as (typeof app.servers)[number]] }]]) }
  const scaled = withAddresses(named, new Map([['localhost', ['10.0.0.2', '10.0.0.3', '10.0.0.4']]]))
  assert.deepEqual(
    scaled.upstreams.get('app')?.servers.map((s) => `${s.name}=${s.host}`),
    ['localhost:3000=10.0.0.2', 'localhost:3000=10.0.0.3', 'localhost:3000=10.0.0.4', '127.0.0.1:3001=127.0.0.1'],
  )
})
