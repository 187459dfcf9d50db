import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import http from 'node:http'
import type net from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import type { HostPort } from '@edgestack/common'
import type { IfCondition, RewriteRule } from '../src/config/model.js'
import { loadNginxConf } from '../src/config/nginx-conf.js'
import { tokenize } from '../src/config/tokenizer.js'
import type { StaticServer } from '../src/index.js'
import { get, hasNginx, makeFixtures, NGINX, startOurs } from './helpers.js'
import { upgradeAndPing } from './ws-client.js'

const run = promisify(execFile)
const wrap = (inner: string) => `events {}\nhttp {\n${inner}\n}\n`

async function confFile(text: string): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ss-map-'))
  const file = join(dir, 'nginx.conf')
  await writeFile(file, text)
  return { dir, file }
}

async function ourError(text: string): Promise<string> {
  const { dir, file } = await confFile(text)
  try {
    await loadNginxConf({ file, prefix: dir })
  } catch (err) {
    return (err as Error).message.replace(file, 'FILE').replace(dir, 'DIR')
  }
  return 'loaded'
}

/** nginx -t on the same text: the `[emerg] ... in FILE:LINE` part of its answer. */
async function nginxError(text: string): Promise<string> {
  const { dir, file } = await confFile(text)
  const r = await run(NGINX, ['-t', '-p', dir, '-c', file, '-g', `pid ${dir}/x.pid; error_log stderr;`]).then(
    () => 'loaded',
    (e: { stderr: string }) => e.stderr,
  )
  if (r === 'loaded') return r
  const m = /\[emerg\] \d+#\d+: (.*)/.exec(r)
  return `[emerg] ${m?.[1] ?? r}`.replace(file, 'FILE').replace(dir, 'DIR')
}

// Every case here is an error in both programs, with the same words.
const ERRORS: [string, string, string][] = [
  ['duplicate default', '  map $arg_a $b { default x; default y; }', 'duplicate default map parameter in FILE:3'],
  ['keys differing in case conflict', '  map $arg_a $b { Abc 1; aBC 2; }', 'conflicting parameter "abc" in FILE:3'],
  ['map result without $', '  map $arg_a b { }', 'invalid variable name "b" in FILE:3'],
  ['a key without a value', '  map $arg_a $b { x; }', 'invalid number of the map parameters in FILE:3'],
  ['three words', '  map $arg_a $b { x y z; }', 'invalid number of the map parameters in FILE:3'],
  ['map onto a built-in', '  map $arg_a $uri { }', 'the duplicate "uri" variable in FILE:3'],
  ['bad wildcard', '  map $arg_a $b { hostnames; a*b x; }', 'invalid hostname or wildcard "a*b" in FILE:3'],
  ['wildcard twice', '  map $arg_a $b { hostnames; *.a.com x; .a.com y; }', 'conflicting parameter ".a.com" in FILE:3'],
  ['dot form and exact', '  map $arg_a $b { hostnames; .a.com y; a.com z; }', 'conflicting parameter "a.com" in FILE:3'],
  ['include inside map', '  map $arg_a $b { include nope.conf; }', 'open() "DIR/nope.conf" failed (2: No such file or directory) in FILE:3'],
  ['map without a block', '  map $arg_a $b\n', 'unexpected "}" in FILE:5'],
  ['set a built-in', '  server { set $uri x; }', 'the duplicate "uri" variable in FILE:3'],
  ['set $http_host', '  server { set $http_host x; }', 'the duplicate "http_host" variable in FILE:3'],
  ['set without $', '  server { set x y; }', 'invalid variable name "x" in FILE:3'],
  ['set one argument', '  server { set $a; }', 'invalid number of arguments in "set" directive in FILE:3'],
  ['nested if', '  server { if ($arg_a) { if ($arg_b) { } } }', '"if" directive is not allowed here in FILE:3'],
  ['add_header in a server if', '  server { if ($arg_a) { add_header X y; } }', '"add_header" directive is not allowed here in FILE:3'],
  ['try_files in a location if', '  server { location / { if ($arg_a) { try_files $uri =404; } } }', '"try_files" directive is not allowed here in FILE:3'],
  ['no parentheses', '  server { location / { if $arg_a { } } }', 'invalid condition "$arg_a" in FILE:3'],
  ['unknown operator', '  server { location / { if ($arg_a ~~ b) { } } }', 'unexpected "~~" in condition in FILE:3'],
  ['too many words', '  server { location / { if ($arg_a = b c) { } } }', 'invalid condition "$arg_a" in FILE:3'],
  ['unknown file test', '  server { location / { if (-q /x) { } } }', 'invalid condition "-q" in FILE:3'],
  ['file test without a path', '  server { location / { if (-f) { } } }', 'invalid condition "-f" in FILE:3'],
  ['not a variable', '  server { location / { if (x) { } } }', 'invalid condition "x" in FILE:3'],
  ['empty condition', '  server { if () { } }', 'invalid condition ")" in FILE:3'],
  ['missing right side', '  server { if ($arg_a = ) { } }', 'invalid condition "$arg_a" in FILE:3'],
  ['break with an argument', '  server { location / { break x; } }', 'invalid number of arguments in "break" directive in FILE:3'],
  [
    'proxy_pass with a URI inside if',
    '  server { location / { if ($arg_a) { proxy_pass http://127.0.0.1:1/x; } } }',
    '"proxy_pass" cannot have URI part in location given by regular expression, or inside named location, or inside "if" statement, or inside "limit_except" block in FILE:3',
  ],
]

// Valid in both: spacing inside the parentheses, quotes before `)`, escaped keys, shadowed prefixes.
const VALID = [
  '  server { if ( $arg_a ) { } if ($arg_a ) { } if ( $arg_a) {} if ($arg_a = "") { return 403; } if ($arg_a != \'\') { return 404; } }',
  '  map $arg_a $b { \\default x; \\hostnames y; volatile; }',
  '  map $arg_a $http_foo { }  server { set $http_bar x; set $args y; set $arg_q z; }',
  '  server { location / { if ($arg_a) { break; set $x 1; return 200; rewrite ^ /x; } } }',
  '  server { location / { if ($arg_a ~ (?P<n>x)) { return 200 $n; } } }',
  '  server { location / { if ($arg_a) { add_header X y; expires 1h; root /tmp; error_page 404 /x; access_log off; gzip off; proxy_pass http://127.0.0.1:1; } } }',
]

describe('map, set and if: nginx.conf errors, worded as nginx words them', () => {
  for (const [name, inner, expected] of ERRORS) {
    test(name, async () => {
      assert.equal(await ourError(wrap(inner)), `[emerg] ${expected}`)
    })
  }
  test('a regex that does not compile names the directive position', async () => {
    assert.match(await ourError(wrap('  map $arg_a $b { ~( x; }')), /^\[emerg\] pcre2_compile\(\) failed: .* in "\(" in FILE:3$/)
    assert.match(await ourError(wrap('  server { if ($arg_a ~ "(") { } }')), /^\[emerg\] pcre2_compile\(\) failed: .* in "\(" in FILE:3$/)
  })
  test('a map of $limit_rate is refused rather than ignored (set $limit_rate is the way)', async () => {
    assert.equal(await ourError(wrap('  server { set $limit_rate 1k; }')), 'loaded')
    assert.equal(
      await ourError(wrap('  map $arg_a $limit_rate { default 1k; }')),
      '[emerg] "map" of "$limit_rate" is not supported by static-server: use "set $limit_rate" in FILE:3',
    )
  })
  test('two maps of one variable: refused (nginx lets the second silently win)', async () => {
    assert.equal(await ourError(wrap('  map $arg_a $b { } map $arg_c $b { }')), '[emerg] the duplicate "b" variable in FILE:3')
  })
  for (const inner of VALID) {
    test(`valid: ${inner.trim().slice(0, 60)}`, async () => {
      assert.equal(await ourError(wrap(inner)), 'loaded')
    })
  }
  test('real nginx answers the same files with the same words', { skip: hasNginx ? false : 'nginx not installed' }, async () => {
    const differ: string[] = []
    for (const [name, inner, expected] of ERRORS) {
      const theirs = await nginxError(wrap(inner))
      if (theirs !== `[emerg] ${expected}`) differ.push(`${name}: nginx says ${theirs}`)
    }
    for (const inner of VALID) {
      const theirs = await nginxError(wrap(inner))
      if (theirs !== 'loaded') differ.push(`valid ${inner}: nginx says ${theirs}`)
    }
    assert.deepEqual(differ, [])
  })
})

describe('map, set and if: the tokenizer', () => {
  test('a closing quote may be followed by `)`, as ngx_conf_read_token allows for if', () => {
    assert.deepEqual(
      tokenize('if ($a = "b") {', 'f').tokens.map((t) => t.text),
      ['if', '($a', '=', 'b', ')', '{'],
    )
    assert.deepEqual(
      tokenize("if ($a != '')", 'f').tokens.map((t) => t.text),
      ['if', '($a', '!=', '', ')'],
    )
  })
  test('any other character after a closing quote is still an error', () => {
    assert.throws(() => tokenize('set $a "b"c;', 'f'), /unexpected "c"/)
  })
})

describe('map, set and if: the model', () => {
  test('a map: keys lower-cased, regexes in order, hostnames longest first, include, default', async () => {
    const { dir, file } = await confFile(
      wrap(`  map $host $site {
    hostnames;
    default  fallback;
    Example.COM exact;
    *.example.com  head;
    *.a.example.com  longer;
    www.*  tail;
    ~^(\\w+)\\.test$  "re $1";
    ~*^X  ci;
    include extra.map;
  }
  server { listen 127.0.0.1:0; set $who "site=$site"; }`),
    )
    await writeFile(join(dir, 'extra.map'), 'from.include yes;\n')
    const m2 = await loadNginxConf({ file, prefix: dir })
    const vars = m2.servers[0]?.userVars
    assert.ok(vars)
    const site = vars.maps.get('site')
    assert.ok(site)
    assert.deepEqual([...site.exact.keys()], ['example.com', 'from.include'])
    assert.deepEqual(site.heads.map((h) => h.suffix), ['.a.example.com', '.example.com'])
    assert.deepEqual(site.tails.map((h) => h.prefix), ['www.'])
    assert.deepEqual(site.regexes.map((r) => `${r.re.source}/${r.re.flags}`), ['^(\\w+)\\.test$/', '^X/i'])
    assert.deepEqual([...vars.names].sort(), ['site', 'who'])
  })

  test('rewrite-module directives keep the order written, if blocks nest their own rules', async () => {
    const { dir, file } = await confFile(
      wrap(`  server {
    listen 127.0.0.1:0;
    set $a 1;
    if ($arg_x) { set $a 2; break; }
    rewrite ^/old /new;
    location / {
      add_header X-Outer 1;
      if (!-f $request_filename) { add_header X-Inner 1; return 404; }
      if ( $arg_y ~* "^(y+)$" ) { set $b $1; }
      if ($arg_z != "") { }
    }
  }`),
    )
    const m = await loadNginxConf({ file, prefix: dir })
    const s = m.servers[0]
    assert.ok(s)
    assert.deepEqual(s.rewrites.map((r) => r.kind), ['set', 'if', 'rewrite'])
    const srvIf = s.rewrites[1] as Extract<RewriteRule, { kind: 'if' }>
    assert.equal(srvIf.conf, undefined, 'a server-level if has no configuration of its own')
    assert.deepEqual(srvIf.body.map((r) => r.kind), ['set', 'break'])
    const loc = s.locations[0]
    assert.ok(loc)
    const ifs = loc.rewrites as Extract<RewriteRule, { kind: 'if' }>[]
    assert.deepEqual(ifs.map((r) => r.cond.kind), ['file', 'regex', 'eq'])
    assert.deepEqual(ifs[0]?.cond, { kind: 'file', test: 'f', negate: true, path: [{ v: 'request_filename' }] } satisfies IfCondition)
    assert.equal(ifs[0]?.usesPath, true)
    assert.deepEqual(ifs[0]?.conf?.addHeaders.map((h) => h.name), ['X-Inner'], 'add_header inside if replaces the list, as in nginx')
    const re = ifs[1]?.cond as Extract<IfCondition, { kind: 'regex' }>
    assert.equal(re.re.flags, 'i')
    assert.equal(re.re.source, '^(y+)$')
    const eq = ifs[2]?.cond as Extract<IfCondition, { kind: 'eq' }>
    assert.equal(eq.negate, true)
    assert.deepEqual(eq.other, [])
  })

  test('a config without map or set looks nothing up', async () => {
    const { dir, file } = await confFile(wrap('  server { listen 127.0.0.1:0; location / { return 200; } }'))
    const m = await loadNginxConf({ file, prefix: dir })
    assert.equal(m.servers[0]?.userVars, undefined)
  })
})

describe('map, set and if: behaviour over real sockets', () => {
  let dir: string
  let ours: StaticServer
  let addr: HostPort
  let backend: http.Server
  const upgraded = new Set<net.Socket>()

  before(async () => {
    dir = await makeFixtures()
    backend = http.createServer((req, res) => {
      res.setHeader('content-type', 'text/plain')
      res.end(`backend ${req.url} user=${req.headers['x-user'] ?? '-'} conn=${req.headers.connection ?? '-'}\n`)
    })
    backend.on('upgrade', (req, socket) => {
      upgraded.add(socket as net.Socket)
      socket.on('error', () => {})
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: ${req.headers.connection}\r\n\r\n`)
      socket.on('data', (d: Buffer) => socket.write(`echo:${d}`))
    })
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()))
    const up = (backend.address() as AddressInfo).port
    const conf = `
events {}
http {
    access_log off;
    log_format vars '$uri tier=$tier who=$who';
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    map $arg_t $tier { default free; gold paid; }
    map $uri $seen { default $uri; }
    map $uri $fresh { volatile; default $uri; }
    map $loop_b $loop_a { default $loop_b; }
    map $loop_a $loop_b { default "b:$loop_a"; }
    server {
        listen 127.0.0.1:0;
        root ${dir}/root;
        set $who guest;
        if ($http_x_user) { set $who $http_x_user; }
        access_log ${dir}/vars.log vars;
        location /ws/ {
            proxy_pass http://127.0.0.1:${up};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-User $who;
        }
        location /cache/ { set $first_seen $seen; set $first_fresh $fresh; rewrite ^ /cache-after; }
        location /cache-after { return 200 "seen=$first_seen/$seen fresh=$first_fresh/$fresh\\n"; }
        location /loop { return 200 "a=$loop_a b=$loop_b\\n"; }
        location /tf/ { set $file found.txt; try_files /nope /tf/$file =404; add_header X-Tier $tier; }
        location /byroot/ { set $base ${dir}/root/sub; root $base; rewrite ^/byroot/(.*)$ /$1 break; }
        location /ret { set $target /a.txt; if ($arg_go) { return 302 $target; } return 200 "$who $tier\\n"; }
        location /files/ {
            alias ${dir}/root/;
            if (!-e $request_filename) { return 404 "no such $uri\\n"; }
        }
    }
}`
    await writeFile(join(dir, 'vars.conf'), conf)
    const o = await startOurs(dir, join(dir, 'vars.conf'))
    ours = o.server
    addr = o.addr[0] as HostPort
  })

  after(async () => {
    await ours?.close({ drainTimeoutMs: 100 })
    for (const s of upgraded) s.destroy()
    backend?.closeAllConnections()
    await new Promise<void>((r) => backend.close(() => r()))
  })

  test('the websocket idiom: map $http_upgrade $connection_upgrade tunnels an upgrade', async () => {
    const text = await upgradeAndPing(addr, 'GET /ws/socket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-User: ann\r\n\r\n')
    assert.match(text, /^HTTP\/1\.1 101 /)
    assert.match(text, /\r\nConnection: upgrade\r\n/i, 'the upstream received Connection: $connection_upgrade = upgrade')
    assert.match(text, /echo:ping/)
  })

  test('the same idiom on a plain request: Connection is "close" for nginx, the request is proxied', async () => {
    const r = await get(addr, '/ws/plain', { 'X-User': 'bob' })
    assert.equal(r.status, 200)
    assert.match(r.body.toString(), /^backend \/ws\/plain user=bob /)
  })

  test('set at server level, changed by a server-level if, reaches proxy_set_header', async () => {
    assert.match((await get(addr, '/ws/x')).body.toString(), / user=guest /)
  })

  test('a map is cached for the request across a rewrite; a volatile one is looked up again', async () => {
    assert.equal((await get(addr, '/cache/x')).body.toString(), 'seen=/cache/x//cache/x fresh=/cache/x//cache-after\n')
  })

  test('maps that read each other get "" instead of looping', async () => {
    assert.equal((await get(addr, '/loop')).body.toString(), 'a=b: b=b:\n')
  })

  test('user variables in try_files, add_header, root and return', async () => {
    const tf = await get(addr, '/tf/anything?t=gold')
    assert.equal(tf.status, 200)
    assert.equal(tf.body.toString(), 'found\n')
    assert.equal(tf.headers.get('x-tier'), 'paid')
    const byroot = await get(addr, '/byroot/index.html')
    assert.equal(byroot.body.toString(), '<p>sub index</p>\n')
    const ret = await get(addr, '/ret?go=1')
    assert.equal(ret.status, 302)
    assert.match(ret.headers.get('location') ?? '', /\/a\.txt$/)
    assert.equal((await get(addr, '/ret?t=gold', { 'X-User': 'cy' })).body.toString(), 'cy paid\n')
  })

  test('if (!-e $request_filename) with alias stats asynchronously and falls through when it exists', async () => {
    assert.equal((await get(addr, '/files/a.txt')).status, 200)
    const missing = await get(addr, '/files/nope.txt')
    assert.equal(missing.status, 404)
    assert.equal(missing.body.toString(), 'no such /files/nope.txt\n')
  })

  test('access_log formats read map and set variables', async () => {
    await get(addr, '/ret?t=gold', { 'X-User': 'logme' })
    let text = ''
    for (let i = 0; i < 50 && !text.includes('who=logme'); i++) {
      await new Promise((r) => setTimeout(r, 20))
      text = await readFile(join(dir, 'vars.log'), 'utf8').catch(() => '')
    }
    assert.match(text, /^\/ret tier=paid who=logme$/m)
  })
})
