import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import type { StaticServer } from '../src/index.js'
import { get, hasNginx, makeFixtures, NGINX, type RawResponse, startBoth, startEcho } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'

/**
 * map, set, if and break under real nginx and under static-server, on the same nginx.conf: the
 * websocket `$connection_upgrade` idiom, map's exact (case-insensitive), hostnames and regex
 * keys with captures, set's order against rewrite, every `if` condition form, and the "if is
 * evil" surprises (an `if` block's own add_header list, try_files not inherited, proxy_pass
 * inherited) that a user switching between the two programs must find identical.
 */
function config(dir: string, port: number, up: number, pid: string): string {
  const root = join(dir, 'root')
  return `${httpHead(dir, port, pid)}
    upstream app { server 127.0.0.1:${up}; }

    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    map $arg_a $exact {
        default none;
        abc lower;
        \\default escaped;
        ~^(?<pre>x+)(y)$ "re $1 $2";
        ~*^Q(.*) "ci $1";
        ~^$ never;
    }
    map $arg_h $host_kind {
        hostnames;
        default no;
        *.ex.test head;
        .dot.test dot;
        mail.* tail;
        a.ex.test exact;
        include map-extra.conf;
    }
    map "$arg_x:$arg_y" $combo { default "none"; "1:2" "one-two $arg_z"; ~^(\\d+): "first $1"; }
    map $arg_m $mv { default $uri; v $http_x_val; }

    server {
        listen 127.0.0.1:${port} default_server;
        server_name localhost;
        root ${root};

        set $srv "server-$arg_s";
        if ($arg_block = yes) { return 403; }
        if ($http_x_srv ~ ^(\\w+)$) { set $srvcap $1; }
        if ($arg_go) { rewrite ^ /a.txt; }
        if ($arg_sb) { break; }
        set $srvafter yes;
        if ($uri ~ ^/(viaindex/index\\.html|tfr-target)$) { set $via_index "yes $1"; }
        if ($uri = /errors/404.html) { return 200 "server rewrites ran again for the error page $via_index\\n"; }

        location /map { return 200 "exact=$exact pre=$pre host=$host_kind combo=$combo mv=$mv cu=$connection_upgrade\\n"; }
        location /set { set $a 1; set $b "$a-$arg_q"; return 200 "a=$a b=$b srv=$srv srvcap=$srvcap after=$srvafter\\n"; }
        location /setorder { set $a first; rewrite ^ /setdest; set $a second; }
        location /setdest { return 200 "a=$a\\n"; }
        location /if/ {
            if ($arg_v) { set $r "v:$arg_v"; }
            if ($arg_e = "") { set $e empty; }
            if ($arg_e != "") { set $e "ne:$arg_e"; }
            if ($arg_re ~ ^(\\d+)-(\\d+)$) { set $sum "$2/$1"; }
            if ($arg_ci ~* ^abc) { set $ci yes; }
            if ($arg_nre !~ ^ok$) { set $nre "not-ok"; }
            if ($arg_nci !~* ^OK$) { set $nci "not-ok-ci"; }
            if ( $arg_sp ) { set $sp spaced; }
            return 200 "r=$r e=$e sum=$sum ci=$ci nre=$nre nci=$nci sp=$sp\\n";
        }
        location /ifret/ {
            if ($arg_x) { return 404; }
            if ($arg_y) { rewrite ^ /a.txt last; }
            if ($arg_z) { rewrite ^ /a.txt break; }
            if ($arg_r) { return 301 /sub/; }
            return 200 "fell through\\n";
        }
        location /ifbreak/ { set $s a; if ($arg_b) { break; } set $s b; return 200 "s=$s\\n"; }
        location /files/ {
            alias ${root}/;
            if (-f $request_filename) { return 200 "file $request_filename\\n"; }
            if (-d $request_filename) { return 200 "dir\\n"; }
            if (!-e $request_filename) { return 200 "none\\n"; }
            return 200 "other\\n";
        }
        location /nf/ {
            alias ${root}/;
            if (!-f $request_filename) { return 200 "not a file\\n"; }
            if (!-d $request_filename) { return 200 "not a dir\\n"; }
            return 200 "dir\\n";
        }
        location /fx/ { alias ${root}/; if (-x $request_filename) { return 200 "x\\n"; } if (!-x $request_filename) { return 200 "not x\\n"; } }
        location /ifconf/ { alias ${root}/; add_header X-A outer; if ($arg_h) { add_header X-B inner; } if ($arg_e) { expires 1h; } }
        location /sub/ { try_files /nope =410; if ($arg_t) { add_header X-A tf; } }
        location /ifproxy/ { if ($arg_p) { proxy_pass http://app; } }
        location /inh/ { proxy_pass http://app; if ($arg_h) { add_header X-A inh; } }
        location /ws { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; }
        location /named { if ($uri ~ ^/named/(?<word>\\w+)) { return 200 "w=$word 1=$1\\n"; } return 200 "nomatch\\n"; }
        location /rfn/ { alias ${root}/sub/; return 200 "$request_filename|$document_root\\n"; }
        location /args { set $args "x=1&y=2"; return 200 "args=$args x=$arg_x\\n"; }
        location ~ ^/loccap/(\\w+)$ { if ($arg_k ~ ^k) { return 200 "kept $1\\n"; } if ($arg_k ~ ^(\\w)) { return 200 "replaced $1\\n"; } return 200 "loc $1\\n"; }
        location ~ ^/rwcap/(\\w+)$ { rewrite ^/nomatch(.*) /x; return 200 "1=$1\\n"; }
        location ~ ^/mapcap/(\\w+)$ { return 200 "combo=$combo 1=$1\\n"; }
        location /viaindex/ { alias ${root}/sub/; index index.html; }
        location = /viaindex/index.html { return 200 "via index: $via_index\\n"; }
        location /ep/ { error_page 404 /errors/404.html; }
        location /tfr/ { try_files /nope /tfr-target; }
        location = /tfr-target { return 200 "tf: $via_index\\n"; }
        location ~ ^/locname/(?<part>\\w+)/(?P<rest>.*)$ { return 200 "part=$part rest=$rest 1=$1\\n"; }
        location /twoifs/ { alias ${root}/; if ($arg_a) { add_header X-A one; } if ($arg_b) { add_header X-B two; } }
        location /cached { set $before $exact; set $args a=changed; return 200 "before=$before exact=$exact\\n"; }
        location /hdrvar { add_header X-A "$exact"; alias ${root}/; }
    }
    server {
        listen 127.0.0.1:${port};
        server_name ~^(?<sub>\\w+)\\.named\\.test$;
        location / { return 200 "sub=$sub\\n"; }
        location ~ ^/(?<first>\\w+) { return 200 "sub=$sub first=$first 1=$1\\n"; }
    }
}
`
}

interface Case {
  path: string
  headers?: Record<string, string>
}

function corpus(): Case[] {
  const c: Case[] = []
  for (const a of ['abc', 'ABC', 'aBc', 'xy', 'xxy', 'q1', 'Qzz', '', 'default', 'zzz']) c.push({ path: `/map?a=${a}` })
  c.push({ path: '/map' })
  for (const h of ['a.ex.test', 'b.ex.test', 'c.b.ex.test', 'ex.test', 'dot.test', 'x.dot.test', 'mail.foo.org', 'mail.', 'B.EX.TEST.', 'A.EX.TEST', 'inc.test', 'other']) c.push({ path: `/map?h=${h}` })
  for (const q of ['x=1&y=2&z=3', 'x=1&y=2', 'x=7&y=', 'x=a&y=b', '']) c.push({ path: `/map?${q}` })
  c.push({ path: '/map?m=v', headers: { 'X-Val': 'from header' } })
  c.push({ path: '/map?m=w' })
  c.push({ path: '/map', headers: { Upgrade: 'websocket' } })
  for (const q of ['', 'q=9', 's=S&q=1', 'sb=1', 'sb=1&q=2']) c.push({ path: `/set?${q}` })
  c.push({ path: '/set', headers: { 'X-Srv': 'word' } })
  c.push({ path: '/set', headers: { 'X-Srv': 'two words' } })
  c.push({ path: '/a.txt?block=yes' })
  c.push({ path: '/missing?block=yes' })
  c.push({ path: '/map?block=no' })
  c.push({ path: '/anything?go=1' })
  c.push({ path: '/setorder' })
  for (const q of ['', 'v=1', 'v=0', 'v=00', 'e=', 'e=x', 're=12-34', 're=1-x', 'ci=ABCd', 'ci=xabc', 'nre=ok', 'nre=OK', 'nci=ok', 'nci=no', 'sp=1']) c.push({ path: `/if/?${q}` })
  for (const q of ['', 'x=1', 'y=1', 'z=1', 'r=1']) c.push({ path: `/ifret/?${q}` })
  for (const q of ['', 'b=1']) c.push({ path: `/ifbreak/?${q}` })
  for (const p of ['/files/a.txt', '/files/sub', '/files/sub/', '/files/nope', '/files/sub/index.html', '/nf/a.txt', '/nf/sub', '/nf/nope', '/fx/a.txt', '/fx/sub', '/fx/run.sh', '/fx/nope']) c.push({ path: p })
  for (const q of ['', 'h=1', 'e=1', 'h=1&e=1']) c.push({ path: `/ifconf/a.txt?${q}` })
  c.push({ path: '/ifconf/missing?h=1' })
  for (const q of ['', 't=1']) c.push({ path: `/sub/index.html?${q}` })
  for (const q of ['', 'p=1']) c.push({ path: `/ifproxy/x?${q}` })
  for (const q of ['', 'h=1']) c.push({ path: `/inh/y?${q}` })
  c.push({ path: '/ws/z' })
  for (const p of ['/named/abc', '/named/', '/rfn/x.html', '/args?q=1', '/loccap/abc', '/loccap/abc?k=kk', '/loccap/abc?k=zz', '/cached?a=abc', '/hdrvar/a.txt?a=xy', '/rwcap/abc', '/mapcap/abc?x=5&y=', '/mapcap/abc?x=a&y=b', '/viaindex/', '/ep/missing', '/tfr/x', '/locname/ab/c/d', '/twoifs/a.txt?a=1', '/twoifs/a.txt?b=1', '/twoifs/a.txt?a=1&b=1']) c.push({ path: p })
  for (const p of ['/', '/word/x']) c.push({ path: p, headers: { Host: 'abc.named.test' } })
  return c
}

const COMPARED = ['content-type', 'location', 'x-a', 'x-b', 'cache-control', 'x-upstream']

function view(r: RawResponse, port: number): string {
  const h = COMPARED.map((n) => `${n}=${r.headers.get(n) ?? '-'}`).join(' ')
  let body = r.body.toString('latin1').replaceAll('<hr><center>nginx</center>', '<hr><center>static-server</center>')
  // Keep-alive and framing differ on proxied answers (DIFFERENCES.md); the echoed request does not.
  body = body.replace(/ ka=\S+/, '')
  return `${r.status} ${h} ${body}`.replaceAll(String(port), 'PORT')
}

describe('differential: map, set and if under static-server and real nginx', { skip: hasNginx ? false : `${NGINX} is not installed` }, () => {
  let dir: string
  let echo: Awaited<ReturnType<typeof startEcho>>
  let nginx: ChildProcess | undefined
  let ours: StaticServer | undefined
  let ourAddr: HostPort
  let theirAddr: HostPort

  before(async () => {
    dir = await makeFixtures()
    echo = await startEcho()
    await writeFile(join(dir, 'map-extra.conf'), 'inc.test included;\n')
    await writeFile(join(dir, 'root/run.sh'), '#!/bin/sh\n')
    await chmod(join(dir, 'root/run.sh'), 0o755)
    ;({ nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, echo.port, pid)))
  })

  after(async () => {
    nginx?.kill('SIGTERM')
    await ours?.close({ drainTimeoutMs: 100 })
    await echo?.close()
  })

  test('spot checks: the corpus exercises what it claims', async () => {
    const body = async (p: string, h: Record<string, string> = {}) => (await get(ourAddr, p, h)).body.toString()
    assert.equal(await body('/map?a=ABC'), 'exact=lower pre= host=no combo=none mv=/map cu=close\n')
    assert.equal(await body('/map?a=xxy'), 'exact=re xx y pre=xx host=no combo=none mv=/map cu=close\n')
    assert.match(await body('/map?h=c.b.ex.test'), / host=head /)
    assert.match(await body('/map', { Upgrade: 'websocket' }), / cu=upgrade\n$/)
    assert.equal(await body('/if/?re=12-34'), 'r= e=empty sum=34/12 ci= nre=not-ok nci=not-ok-ci sp=\n')
    assert.equal(await body('/setorder'), 'a=second\n')
    assert.equal((await get(ourAddr, '/sub/index.html')).status, 410)
    assert.equal((await get(ourAddr, '/sub/index.html?t=1')).headers.get('x-a'), 'tf')
    assert.equal((await get(ourAddr, '/ifproxy/x?p=1')).headers.get('x-upstream'), 'echo')
    // An internal redirect (index, try_files, error_page) runs the server's rewrite rules again.
    assert.equal(await body('/viaindex/'), 'via index: yes viaindex/index.html\n')
    assert.equal(await body('/tfr/x'), 'tf: yes tfr-target\n')
    assert.equal((await get(ourAddr, '/ep/missing')).status, 404)
    assert.equal(await body('/locname/ab/c/d'), 'part=ab rest=c/d 1=ab\n')
    assert.equal(await body('/word/x', { Host: 'abc.named.test' }), 'sub=abc first=word 1=word\n')
  })

  test('every request gets the same answer from both', async () => {
    const cases = corpus()
    assert.ok(cases.length >= 90, `only ${cases.length}`)
    const failures: string[] = []
    for (const k of cases) {
      const [a, b] = await Promise.all([get(ourAddr, k.path, k.headers), get(theirAddr, k.path, k.headers)])
      const va = view(a, ourAddr.port)
      const vb = view(b, theirAddr.port)
      if (va !== vb) failures.push(`${k.path} ${JSON.stringify(k.headers ?? {})}\n  ours  ${JSON.stringify(va)}\n  nginx ${JSON.stringify(vb)}`)
    }
    assert.deepEqual(failures, [], `${failures.length} of ${cases.length} differ:\n${failures.join('\n')}`)
  })
})
