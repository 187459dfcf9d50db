import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { promisify } from 'node:util'
import { loadNginxConf } from '../src/config/nginx-conf.js'
import { tokenize } from '../src/config/tokenizer.js'
import { findLocation } from '../src/locations.js'
import { buildVirtualHosts, selectServer } from '../src/server-select.js'
import { parseTarget } from '../src/uri.js'
import { hasNginx, NGINX, REPO } from './helpers.js'

const run = promisify(execFile)
const CLI = join(REPO, 'packages/static-server/dist/src/cli.js')

async function confFile(text: string, extra: Record<string, string> = {}): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ss-conf-'))
  const file = join(dir, 'nginx.conf')
  await writeFile(file, text)
  for (const [name, content] of Object.entries(extra)) {
    await mkdir(join(dir, name, '..'), { recursive: true })
    await writeFile(join(dir, name), content)
  }
  return { dir, file }
}

const wrap = (inner: string) => `events {}\nhttp {\n${inner}\n}\n`

async function loadError(text: string): Promise<string> {
  const { dir, file } = await confFile(text)
  try {
    await loadNginxConf({ file, prefix: dir })
  } catch (err) {
    return (err as Error).message.replace(file, 'FILE')
  }
  throw new Error('loaded without error')
}

describe('nginx.conf tokenizer', () => {
  test('quotes, escapes, comments and braced variable words', () => {
    const t = tokenize(`a "b c" 'd\\'e' f\\ g # comment\n"x\\ty" \${h}z; {}`, 'f').tokens
    assert.deepEqual(
      t.map((x) => x.text),
      ['a', 'b c', "d'e", 'f\\ g', 'x\ty', `\${h}z`, ';', '{', '}'],
    )
    assert.equal(t[4]?.line, 2)
  })
  test('regex escapes are kept', () => {
    assert.equal(tokenize('~ \\.php$', 'f').tokens[1]?.text, '\\.php$')
  })
})

describe('nginx.conf errors, worded as nginx words them', () => {
  const cases: [string, string, string][] = [
    ['unknown directive', wrap('  foo bar;'), '[emerg] unknown directive "foo" in FILE:3'],
    ['wrong context', wrap('  alias /x;'), '[emerg] "alias" directive is not allowed here in FILE:3'],
    ['root in events', 'events { root /x; }\n', '[emerg] "root" directive is not allowed here in FILE:1'],
    ['argument count', wrap('  default_type;'), '[emerg] invalid number of arguments in "default_type" directive in FILE:3'],
    ['missing ;', wrap('  default_type a\n}'), '[emerg] unexpected "}" in FILE:4'],
    ['missing }', 'events {}\nhttp {\n', '[emerg] unexpected end of file, expecting "}" in FILE:3'],
    ['stray }', 'events {}\n}\n', '[emerg] unexpected "}" in FILE:2'],
    ['no block', 'events;\n', '[emerg] directive "events" has no opening "{" in FILE:1'],
    ['bad flag', wrap('  autoindex maybe;'), '[emerg] invalid value "maybe" in "autoindex" directive, it must be "on" or "off" in FILE:3'],
    ['bad size', wrap('  client_max_body_size 10q;'), '[emerg] "client_max_body_size" directive invalid value in FILE:3'],
    ['bad time', wrap('  keepalive_timeout 5 x;'), '[emerg] "keepalive_timeout" directive invalid value in FILE:3'],
    ['bad number', wrap('  keepalive_requests abc;'), '[emerg] "keepalive_requests" directive invalid number in FILE:3'],
    ['missing include', wrap('  include nope.conf;'), '[emerg] open() "DIR/nope.conf" failed (2: No such file or directory) in FILE:3'],
    ['unknown log format', wrap('  access_log /tmp/x fancy;'), '[emerg] unknown log format "fancy" in FILE:3'],
    ['proxy_pass uri in regex location', wrap('  server { location ~ x { proxy_pass http://a/b; } }'), '[emerg] "proxy_pass" cannot have URI part in location given by regular expression, or inside named location, or inside "if" statement, or inside "limit_except" block in FILE:3'],
    ['duplicate location', wrap('  server { location /a { } location /a { } }'), '[emerg] duplicate location "/a" in FILE:3'],
  ]
  for (const [name, text, expected] of cases) {
    test(name, async () => {
      const { dir, file } = await confFile(text)
      let message = ''
      try {
        await loadNginxConf({ file, prefix: dir })
      } catch (err) {
        message = (err as Error).message.replace(file, 'FILE').replace(dir, 'DIR')
      }
      assert.equal(message, expected)
    })
  }
  test('errors carry the position for edgestack too', async () => {
    const m = await loadError(wrap('  foo;'))
    assert.match(m, /FILE:3$/)
  })
})

describe('nginx.conf model', () => {
  test('the repository config/nginx.conf loads unchanged', async () => {
    const m = await loadNginxConf({ file: 'config/nginx.conf', prefix: REPO })
    assert.equal(m.servers.length, 1)
    assert.equal(m.pid, join(REPO, '.artifacts/nginx.pid'))
    assert.deepEqual(m.servers[0]?.listens, [{ host: '127.0.0.1', port: 8081, defaultServer: false, proxyProtocol: false }])
    assert.equal(m.servers[0]?.conf.types?.get('css'), 'text/css')
    assert.ok(m.upstreams.get('node'))
    assert.ok(Object.isFrozen(m) && Object.isFrozen(m.servers[0]))
  })

  test('include with globs, relative to the config directory, in name order', async () => {
    const { dir, file } = await confFile(wrap('  include conf.d/*.conf;'), {
      'conf.d/b.conf': 'server { listen 127.0.0.1:2; server_name b; }',
      'conf.d/a.conf': 'server { listen 127.0.0.1:1; server_name a; }',
      'conf.d/skip.txt': 'garbage',
    })
    const m = await loadNginxConf({ file, prefix: dir })
    assert.deepEqual(
      m.servers.map((s) => s.primaryName),
      ['a', 'b'],
    )
  })

  test('-g directives join the main context', async () => {
    const { dir, file } = await confFile(wrap(''))
    const m = await loadNginxConf({ file, prefix: dir, globals: ['worker_processes 3; pid /tmp/x.pid;'] })
    assert.equal(m.workers, 3)
    assert.equal(m.pid, '/tmp/x.pid')
  })

  test('inheritance: list directives replace the parent list only when set', async () => {
    const { dir, file } = await confFile(
      wrap(`  add_header X-Http 1;
  server { listen 127.0.0.1:1; root /srv;
    location /a { }
    location /b { add_header X-B 2; root /other; }
  }`),
    )
    const m = await loadNginxConf({ file, prefix: dir })
    const s = m.servers[0]
    const [a, b] = s?.locations ?? []
    assert.deepEqual(
      a?.conf.addHeaders.map((h) => h.name),
      ['X-Http'],
    )
    assert.deepEqual(
      b?.conf.addHeaders.map((h) => h.name),
      ['X-B'],
    )
    assert.deepEqual(a?.conf.root, ['/srv'])
    assert.deepEqual(b?.conf.root, ['/other'])
  })

  test('location order: =, ^~, longest prefix, regexes in order, nested first', async () => {
    const { dir, file } = await confFile(
      wrap(`  server { listen 127.0.0.1:1;
    location = /exact { }
    location / { }
    location /images/ { location ~ \\.gif$ { } }
    location ^~ /static/ { }
    location ~ \\.(gif|jpg)$ { }
    location ~* \\.PNG$ { }
    location /documents/ { }
  }`),
    )
    const m = await loadNginxConf({ file, prefix: dir })
    const locs = m.servers[0]?.locations ?? []
    const which = (u: string) => {
      const f = findLocation(locs, u).loc
      return f ? `${f.modifier}${f.pattern}` : 'none'
    }
    assert.equal(which('/exact'), '=/exact')
    assert.equal(which('/exact/'), '/')
    assert.equal(which('/static/a.gif'), '^~/static/')
    assert.equal(which('/documents/a.jpg'), '~\\.(gif|jpg)$')
    assert.equal(which('/documents/a.txt'), '/documents/')
    assert.equal(which('/images/a.gif'), '~\\.gif$')
    assert.equal(which('/images/a.jpg'), '~\\.(gif|jpg)$')
    assert.equal(which('/x.png'), '~*\\.PNG$')
    assert.equal(which('/'), '/')
  })

  test('virtual hosts: exact, leading and trailing wildcards, regex, default_server', async () => {
    const { dir, file } = await confFile(
      wrap(`  server { listen 127.0.0.1:1; server_name first; }
  server { listen 127.0.0.1:1 default_server; server_name dflt; }
  server { listen 127.0.0.1:1; server_name example.com *.example.com; }
  server { listen 127.0.0.1:1; server_name *.b.example.com; }
  server { listen 127.0.0.1:1; server_name www.example.*; }
  server { listen 127.0.0.1:1; server_name ~^(?<n>\\d+)\\.num$; }`),
    )
    const m = await loadNginxConf({ file, prefix: dir })
    const v = buildVirtualHosts(m.servers, (s) => s.listens.some((l) => l.defaultServer))
    const name = (h: string) => selectServer(v, h).server.primaryName
    assert.equal(name('example.com'), 'example.com')
    assert.equal(name('a.example.com'), 'example.com')
    assert.equal(name('a.b.example.com'), '*.b.example.com')
    assert.equal(name('www.example.com'), 'example.com')
    assert.equal(name('www.example.org'), 'www.example.*')
    assert.equal(name('42.num'), '~^(?<n>\\d+)\\.num$')
    assert.equal(name('nobody'), 'dflt')
    assert.equal(name(''), 'dflt')
  })
})

describe('request targets: decoded once, never above the root', () => {
  const ok: [string, string][] = [
    ['/a/../b', '/b'],
    ['/a/%2e%2e/b', '/b'],
    ['/a/..%2fb', '/b'],
    ['//a///b', '/a/b'],
    ['/a/./b/.', '/a/b/'],
    ['/%41?x=%2f', '/A'],
    ['/caf%C3%A9', '/café'],
  ]
  for (const [t, uri] of ok) test(`${t} -> ${uri}`, () => assert.equal(parseTarget(t, true)?.uri, uri))
  for (const t of ['/../a', '/a/../../b', '/%2e%2e/x', '/a%00b', '/a%2', '/a%zz', '/a\\b', '/a%5cb', '/%c0%ae%c0%ae/x', '/%ff', 'x']) {
    test(`${t} is refused`, () => assert.equal(parseTarget(t, true), undefined))
  }
})

describe('static-server CLI (nginx flags)', () => {
  test('-t on a good file prints the two nginx lines, exit 0', async () => {
    const r = await run(process.execPath, [CLI, '-t', '-p', REPO, '-c', 'config/nginx.conf'])
    assert.match(r.stderr, /static-server: the configuration file .*config\/nginx\.conf syntax is ok\n/)
    assert.match(r.stderr, /static-server: configuration file .*config\/nginx\.conf test is successful\n/)
  })

  test('-t on a bad file prints the error and "test failed", exit 1', async () => {
    const { dir, file } = await confFile(wrap('  bogus on;'))
    const err = await run(process.execPath, [CLI, '-t', '-p', dir, '-c', file]).then(
      () => assert.fail('exit 0'),
      (e: { code: number; stderr: string }) => e,
    )
    assert.equal(err.code, 1)
    assert.equal(err.stderr, `static-server: [emerg] unknown directive "bogus" in ${file}:3\nstatic-server: configuration file ${file} test failed\n`)
  })

  test('starting on a bad file stops before binding, exit 1', async () => {
    const { dir, file } = await confFile(wrap('  server { listen 127.0.0.1:0; nope; }'))
    const err = await run(process.execPath, [CLI, '-p', dir, '-c', file]).then(
      () => assert.fail('exit 0'),
      (e: { code: number; stderr: string; stdout: string }) => e,
    )
    assert.equal(err.code, 1)
    assert.match(err.stderr, /\[emerg\] unknown directive "nope" in .*:3/)
    assert.doesNotMatch(err.stdout, /listening on/)
  })

  test('real nginx agrees the same files are valid and invalid', { skip: hasNginx ? false : 'nginx not installed' }, async () => {
    const bad = await confFile(wrap('  bogus on;'))
    const e = await run(NGINX, ['-t', '-p', bad.dir, '-c', bad.file]).then(
      () => 0,
      (x: { code: number; stderr: string }) => x,
    )
    assert.notEqual(e, 0)
    assert.match((e as { stderr: string }).stderr, /unknown directive "bogus" in .*:3/)
  })
})
