import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { captureLogger, freePort, get, makeFixtures, nginxMissing, type RawResponse, startBoth, startOurs } from './helpers.js'
import { assertRefusedAsNginx, httpHead } from './nginx-test-conf.js'

/**
 * ngx_http_auth_basic_module under both programs on one file: every password scheme an
 * htpasswd file holds (nginx's own {PLAIN} {SHA} {SSHA} $apr1$, and crypt(3)'s $1$ $5$ $6$
 * DES bcrypt), right and wrong passwords, malformed Authorization fields, the file's comment
 * and CR rules, realms with variables and `off`, inheritance, a missing and an unreadable
 * file, satisfy all/any with allow/deny, error_page for the 401, and $remote_user.
 * The hashes were made with libxcrypt (Python's crypt) and `openssl passwd -apr1`.
 */
const HTPASSWD = [
  '# a comment line:{PLAIN}secret',
  'plain:{PLAIN}secret',
  'sha:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=',
  'ssha:{SSHA}+RFhsab2AfzZ0VfEdyknXtUT06RhYmNk',
  'apr1:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/',
  'md5:$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1',
  's5:$5$abcdefgh$gruCpC7VkOTspMQTTSAR8mtlO9Upms.fwqE5y16JVM.',
  's6:$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.',
  's6r:$6$rounds=1000$abcdefgh$nhYjN017qxiYztzyUpZtPnUQcnLy62KsunSLHNeLahp2EHPlAKmFFlrjEwSXGo2kgY5hR2.peKEg2VGUqIJJu1',
  'des:abNANd1rDfiNc',
  'bc:$2b$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a',
  'crlf:{PLAIN}secret\r',
  'field:{PLAIN}secret:a comment after the field',
  'bad:$9$nonsense',
  'badssha:{SSHA}!!not base64',
  'nosalt:{SSHA}5en6G6MezRroT3XKqkdPOmY/BfQ=',
  'star:*',
  'zero:*0',
  'empty:',
  'dup:{PLAIN}first',
  'dup:{PLAIN}secret',
  '\r',
  '',
  'last:{PLAIN}secret',
].join('\n')

function config(dir: string, port: number, pid: string): string {
  const file = 'auth_basic_user_file htpasswd;'
  return `${httpHead(dir, port, pid)}
    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        root ${dir}/root;
        add_header X-User "$remote_user" always;
        location /a/ { alias ${dir}/root/; auth_basic "Restricted $host"; ${file} }
        location /var/ { alias ${dir}/root/; auth_basic "file by arg"; auth_basic_user_file ${dir}/ht-$arg_f; }
        location /realm/ { alias ${dir}/root/; auth_basic $arg_r; ${file} }
        location /nest/ {
            alias ${dir}/root/;
            auth_basic "outer";
            ${file}
            location /nest/open/ { alias ${dir}/root/; auth_basic off; }
            location /nest/realm/ { alias ${dir}/root/; auth_basic "inner"; }
        }
        location /realm-only/ { alias ${dir}/root/; auth_basic "no file"; }
        location /missing/ { alias ${dir}/root/; auth_basic "m"; auth_basic_user_file ${dir}/nope; }
        location /unreadable/ { alias ${dir}/root/; auth_basic "u"; auth_basic_user_file ${dir}/root; }
        location /all/ { alias ${dir}/root/; allow 127.0.0.1; deny all; auth_basic "all"; ${file} }
        location /all-deny/ { alias ${dir}/root/; deny all; auth_basic "all"; ${file} }
        location /any/ { alias ${dir}/root/; satisfy any; allow 127.0.0.1; deny all; auth_basic "any"; ${file} }
        location /any-deny/ { alias ${dir}/root/; satisfy any; deny all; auth_basic "any"; ${file} }
        location /any-deny-only/ { alias ${dir}/root/; satisfy any; deny all; }
        location /any-missing/ { alias ${dir}/root/; satisfy any; deny all; auth_basic "am"; auth_basic_user_file ${dir}/nope; }
        location /page/ { alias ${dir}/root/; auth_basic "p"; ${file} error_page 401 /err/here.txt; }
        location /err/ { alias ${dir}/root/err/; }
        location /log {
            return 200 "user=$remote_user\\n";
        }
    }
}
`
}

const basic = (s: string) => ({ Authorization: `Basic ${Buffer.from(s, 'latin1').toString('base64')}` })
const USERS = ['plain', 'sha', 'ssha', 'apr1', 'md5', 's5', 's6', 's6r', 'des', 'bc', 'crlf', 'field', 'bad', 'badssha', 'nosalt', 'star', 'zero', 'empty', 'dup', 'last', 'nobody', '# a comment line']

const CASES: { path: string; headers?: Record<string, string> }[] = [
  ...USERS.flatMap((u) => [
    { path: '/a/a.txt', headers: basic(`${u}:secret`) },
    { path: '/a/a.txt', headers: basic(`${u}:wrong`) },
  ]),
  { path: '/a/a.txt', headers: basic('zero:*0') },
  { path: '/a/a.txt', headers: basic('star:*') },
  { path: '/a/a.txt', headers: basic('field:secret:a comment after the field') },
  { path: '/a/a.txt', headers: basic('des:secret99') },
  { path: '/a/a.txt', headers: basic('plain:secret\0junk') },
  { path: '/a/a.txt' },
  { path: '/a/a.txt', headers: { Authorization: 'Basic' } },
  { path: '/a/a.txt', headers: { Authorization: 'Basic    ' } },
  { path: '/a/a.txt', headers: { Authorization: `basic   ${Buffer.from('plain:secret').toString('base64')}` } },
  { path: '/a/a.txt', headers: { Authorization: `BASIC ${Buffer.from('plain:secret').toString('base64')}=junk` } },
  { path: '/a/a.txt', headers: { Authorization: `Basic ${Buffer.from('plain:secret').toString('base64')}!` } },
  { path: '/a/a.txt', headers: { Authorization: 'Basic cGxhaW46c2VjcmV0a' } },
  { path: '/a/a.txt', headers: { Authorization: 'Bearer cGxhaW46c2VjcmV0' } },
  { path: '/a/a.txt', headers: basic('plain') },
  { path: '/a/a.txt', headers: basic(':secret') },
  { path: '/var/a.txt?f=one', headers: basic('one:secret') },
  { path: '/var/a.txt?f=two', headers: basic('one:secret') },
  { path: '/var/a.txt?f=two', headers: basic('two:secret') },
  { path: '/realm/a.txt?r=off' },
  { path: '/realm/a.txt?r=Off' },
  { path: '/realm/a.txt?r=quote%22d' },
  { path: '/realm/a.txt' },
  { path: '/nest/a.txt' },
  { path: '/nest/open/a.txt' },
  { path: '/nest/realm/a.txt' },
  { path: '/nest/realm/a.txt', headers: basic('plain:secret') },
  { path: '/realm-only/a.txt' },
  { path: '/missing/a.txt', headers: basic('plain:secret') },
  { path: '/missing/a.txt' },
  { path: '/unreadable/a.txt', headers: basic('plain:secret') },
  { path: '/all/a.txt' },
  { path: '/all/a.txt', headers: basic('plain:secret') },
  { path: '/all-deny/a.txt', headers: basic('plain:secret') },
  { path: '/all-deny/a.txt' },
  { path: '/any/a.txt' },
  { path: '/any-deny/a.txt' },
  { path: '/any-deny/a.txt', headers: basic('plain:wrong') },
  { path: '/any-deny/a.txt', headers: basic('plain:secret') },
  { path: '/any-deny-only/a.txt' },
  { path: '/any-missing/a.txt', headers: basic('plain:secret') },
  { path: '/page/a.txt' },
  { path: '/page/a.txt', headers: basic('plain:secret') },
  { path: '/log', headers: basic('some user:pw') },
  { path: '/log', headers: { Authorization: 'Basic !!' } },
  { path: '/log' },
]

// Our pages name us where nginx's name nginx (DIFFERENCES.md).
const seen = (r: RawResponse) =>
  `${r.status} ${r.headers.get('www-authenticate') ?? '-'} user=${r.headers.get('x-user') ?? '-'} ${JSON.stringify(r.body.toString().slice(0, 200).replace('static-server', 'nginx'))}`

async function fixtures(): Promise<string> {
  const dir = await makeFixtures()
  await mkdir(join(dir, 'tmp'), { recursive: true })
  await writeFile(join(dir, 'htpasswd'), HTPASSWD)
  await writeFile(join(dir, 'ht-one'), 'one:{PLAIN}secret\n')
  await writeFile(join(dir, 'ht-two'), 'two:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n')
  return dir
}

/** Both programs on the file, our error lines kept; closed when the test ends. */
async function startPair(t: TestContext, dir: string) {
  const { logger, lines } = captureLogger()
  const both = await startBoth(dir, (port, pid) => config(dir, port, pid), logger)
  t.after(async () => {
    both.nginx.kill('SIGKILL')
    await both.ours.close({ drainTimeoutMs: 0 })
  })
  return { ...both, lines }
}

test('differential: auth_basic answers every htpasswd scheme and field as nginx does', { skip: nginxMissing }, async (t) => {
  const dir = await fixtures()
  const { ourAddr, theirAddr, lines } = await startPair(t, dir)
  const diffs: string[] = []
  const statuses = new Set<number>()
  for (const c of CASES) {
    const theirs = seen(await get(theirAddr, c.path, c.headers))
    const mine = seen(await get(ourAddr, c.path, c.headers))
    statuses.add(Number(theirs.slice(0, 3)))
    if (theirs !== mine) diffs.push(`${c.path} ${JSON.stringify(c.headers ?? {})}\n  nginx ${theirs}\n  ours  ${mine}`)
  }
  assert.deepEqual(diffs, [])
  assert.deepEqual([...statuses].sort(), [200, 401, 403, 500], 'the corpus reaches every answer nginx gives')
  // What nginx logs for the refusals, in its words.
  const joined = lines.join('\n')
  for (const want of [
    'user "plain": password mismatch',
    'user "nobody" was not found in',
    'no user/password was provided for basic authentication',
    `open() "${dir}/nope" failed (2: No such file or directory)`,
    `pread() "${dir}/root" failed (21: Is a directory)`,
    'access forbidden by rule',
  ]) {
    assert.ok(joined.includes(want), `our log has no "${want}":\n${joined}`)
  }
})

test('auth_basic: yescrypt, which Debian\'s crypt(3) has and we do not, is a 500 and a crit line, never a pass', { skip: nginxMissing }, async (t) => {
  const dir = await fixtures()
  await writeFile(join(dir, 'htpasswd'), 'y:$y$j9T$abcdefgh$IUWJt2doU4Kf6E/JP1UkAT3S5O3Q7SSA8SJirXIlEu9\n')
  const { ourAddr, theirAddr, lines } = await startPair(t, dir)
  // nginx checks it (libxcrypt): the difference is written down in DIFFERENCES.md.
  assert.equal((await get(theirAddr, '/a/a.txt', basic('y:secret'))).status, 200)
  for (const pw of ['secret', 'wrong']) assert.equal((await get(ourAddr, '/a/a.txt', basic(`y:${pw}`))).status, 500)
  assert.ok(lines.some((l) => l.includes('crypt() failed: yescrypt')), lines.join('\n'))
})

test('auth_basic: a bcrypt of high cost does not hold other requests back', async (t) => {
  const dir = await fixtures()
  // Cost 14 (libxcrypt made it): seconds of work in JavaScript, in slices of at most 100 ms; the
  // quick request needs a few turns of the event loop, far fewer than the hash's slices.
  await writeFile(join(dir, 'htpasswd'), 'slow:$2b$14$abcdefghijklmnopqrstuug2/T3netL3BPRcnafSaAr9lEfTNoLyC\nplain:{PLAIN}secret\n')
  await writeFile(join(dir, 'ours.conf'), config(dir, await freePort(), join(dir, 'ours.pid')))
  const ours = await startOurs(dir, join(dir, 'ours.conf'))
  t.after(() => ours.server.close({ drainTimeoutMs: 0 }))
  const addr = ours.addr[0] as HostPort
  const order: string[] = []
  const slow = get(addr, '/a/a.txt', basic('slow:secret')).then((r) => order.push(`slow ${r.status}`))
  const quick = get(addr, '/a/a.txt', basic('plain:secret')).then((r) => order.push(`quick ${r.status}`))
  await Promise.all([slow, quick])
  assert.deepEqual(order, ['quick 200', 'slow 200'])
})

test('differential: auth_basic directives nginx refuses are refused in its words', { skip: nginxMissing }, async () => {
  const dir = await makeFixtures()
  await mkdir(join(dir, 'tmp'), { recursive: true })
  const cases = [
    'auth_basic_user_file a; auth_basic_user_file b;',
    'auth_basic a b;',
    'auth_basic;',
    'auth_basic_user_file;',
    'server { listen 127.0.0.1:1; if ($uri) { auth_basic x; } }',
    'server { auth_basic "$nosuch"; }',
    'server { auth_basic_user_file "/x/$nosuch"; }',
    'satisfy some;',
  ]
  for (const line of cases) await assertRefusedAsNginx(dir, line)
})
