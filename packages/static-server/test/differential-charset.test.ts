import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import { makeFixtures, nginxMissing, rawRequest, startBoth } from './helpers.js'
import { assertRefusedAsNginx, httpHead } from './nginx-test-conf.js'
import { startRawBackend } from './raw-backend.js'

/**
 * charset, source_charset, charset_map (nginx's own koi-utf, win-utf and koi-win, included as
 * Debian ships them), charset_types and override_charset under both programs on one nginx.conf,
 * compared on bytes: single-byte to single-byte (length and ranges kept), to and from UTF-8
 * (chunked, no ranges, `&#N;` for what the table lacks, `?` for invalid UTF-8, a sequence
 * split between reads of a large file), variables, proxied answers with their own charset and
 * X-Accel-Charset, HEAD and HTTP/1.0.
 */
const MAPS = ['koi-utf', 'win-utf', 'koi-win']

function config(dir: string, port: number, pid: string, backend: number): string {
  const cs = `${dir}/root/cs/`
  return `${httpHead(dir, port, pid)}
    ${MAPS.map((m) => `include /etc/nginx/${m};`).join('\n    ')}
    map $arg_cs $cs { default utf-8; win windows-1251; koi koi8-r; other iso-8859-5; }
    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        location /k2u/ { alias ${cs}; source_charset koi8-r; charset utf-8; }
        location /w2u/ { alias ${cs}; source_charset windows-1251; charset utf-8; }
        location /u2k/ { alias ${cs}; source_charset utf-8; charset koi8-r; }
        location /u2w/ { alias ${cs}; source_charset utf-8; charset windows-1251; }
        location /k2w/ { alias ${cs}; source_charset koi8-r; charset windows-1251; }
        location /w2k/ { alias ${cs}; source_charset windows-1251; charset KOI8-R; }
        location /same/ { alias ${cs}; source_charset utf-8; charset UTF-8; }
        location /label/ { alias ${cs}; charset koi8-r; }
        location /var/ { alias ${cs}; source_charset utf-8; charset $cs; }
        location /types/ { alias ${cs}; source_charset koi8-r; charset utf-8; charset_types text/css; }
        location /types-xml/ { alias ${cs}; source_charset koi8-r; charset utf-8; charset_types text/css; default_type text/xml; }
        location /any/ { alias ${cs}; source_charset koi8-r; charset utf-8; charset_types *; }
        location /ret/ { source_charset koi8-r; charset utf-8; return 200 "$arg_t"; }
        location /redir/ { source_charset koi8-r; charset utf-8; return 302 /k2u/koi.html; }
        location /missing/ { alias ${cs}; source_charset koi8-r; charset utf-8; }
        location /p/ { proxy_pass http://127.0.0.1:${backend}; charset utf-8; }
        location /po/ { proxy_pass http://127.0.0.1:${backend}; charset utf-8; override_charset on; }
        location /pw/ { proxy_pass http://127.0.0.1:${backend}; charset windows-1251; source_charset utf-8; }
    }
}
`
}

/** Every byte from 0x20 up: the single-byte tables whole, mapped and unmapped. */
const SINGLE = Buffer.from(Array.from({ length: 0x100 - 0x20 }, (_, i) => i + 0x20))
/** Cyrillic in and out of the maps, the euro, a check mark, an emoji, and broken UTF-8. */
const UTF = Buffer.concat([
  Buffer.from('Привет, мир! Ёё Ѓ Ђ Ґґ Ў € ✓ 😀 ABC\n'),
  Buffer.from([0xff, 0x41, 0xc3, 0x28, 0x42, 0xe2, 0x82, 0x43, 0xf4, 0x90, 0x80, 0x80, 0xc0, 0xaf, 0x0a]),
])

async function fixtures(dir: string): Promise<void> {
  const cs = join(dir, 'root/cs')
  await mkdir(cs, { recursive: true })
  await writeFile(join(cs, 'koi.html'), SINGLE)
  await writeFile(join(cs, 'koi.txt'), SINGLE)
  await writeFile(join(cs, 'koi.css'), SINGLE)
  await writeFile(join(cs, 'koi.bin'), SINGLE)
  await writeFile(join(cs, 'utf.html'), UTF)
  // Larger than one read: sequences fall across the reads' edges; it ends inside a sequence.
  const big = Buffer.concat([Buffer.alloc(1), ...Array.from({ length: 4000 }, () => UTF), Buffer.from([0xe2, 0x82])])
  await writeFile(join(cs, 'big.html'), big)
}

interface Seen {
  line: string
  fields: string
  body: string
}

/** The status line, the fields the charset filter decides, and the body bytes (de-chunked) in hex. */
async function seen(addr: HostPort, request: string): Promise<Seen> {
  const raw = await rawRequest(addr, request)
  const end = raw.indexOf('\r\n\r\n')
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n')
  const pick = (name: string) => lines.find((l) => l.toLowerCase().startsWith(`${name}:`)) ?? `${name}: -`
  const head = lines.join('\n')
  let body = raw.subarray(end + 4)
  if (/\ntransfer-encoding: chunked/i.test(head)) {
    const out: Buffer[] = []
    let at = 0
    for (;;) {
      const eol = body.indexOf('\r\n', at)
      const n = Number.parseInt(body.subarray(at, eol).toString('latin1'), 16)
      if (!(n > 0)) break
      out.push(body.subarray(eol + 2, eol + 2 + n))
      at = eol + 4 + n
    }
    body = Buffer.concat(out)
  }
  const fields = ['content-type', 'content-length', 'transfer-encoding', 'accept-ranges', 'content-range'].map((n) => pick(n).toLowerCase()).join(' | ')
  // Our built-in pages are signed with our name (DIFFERENCES.md).
  const signed = body.toString('latin1').replace('<center>static-server</center>', '<center>nginx</center>')
  return { line: lines[0] as string, fields, body: Buffer.from(signed, 'latin1').toString('hex') }
}

test('differential: charset conversion through charset_map as nginx, on bytes', { skip: nginxMissing }, async (t) => {
  const dir = await makeFixtures()
  await fixtures(dir)
  const backend = await startRawBackend('b', (r) => {
    if (r.line.includes('accel')) return { bytes: Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Accel-Charset: koi8-r\r\nContent-Length: ${UTF.length}\r\n\r\n`), UTF]) }
    if (r.line.includes('quoted')) return { bytes: Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/html; charset="koi8-r"\r\nContent-Length: ${SINGLE.length}\r\n\r\n`), SINGLE]) }
    if (r.line.includes('unknown')) return { bytes: Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain;charset=x-weird\r\nContent-Length: ${SINGLE.length}\r\n\r\n`), SINGLE]) }
    if (r.line.includes('gz')) return { bytes: Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=koi8-r\r\nContent-Encoding: gzip\r\nContent-Length: ${SINGLE.length}\r\n\r\n`), SINGLE]) }
    return { bytes: Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=koi8-r\r\nContent-Length: ${SINGLE.length}\r\n\r\n`), SINGLE]) }
  })
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, pid, backend.port))
  t.after(async () => {
    nginx.kill('SIGKILL')
    await ours.close()
    await backend.close()
  })
  const req = (target: string, extra = '', method = 'GET', version = '1.1') => `${method} ${target} HTTP/${version}\r\nHost: localhost\r\nConnection: close\r\n${extra}\r\n`
  const cases = [
    req('/k2u/koi.html'),
    req('/k2u/koi.txt'),
    req('/k2u/koi.bin'),
    req('/k2u/koi.html', '', 'HEAD'),
    req('/k2u/koi.html', '', 'GET', '1.0'),
    req('/k2u/koi.html', 'Range: bytes=0-9\r\n'),
    req('/w2u/koi.html'),
    req('/u2k/utf.html'),
    req('/u2k/big.html'),
    req('/u2w/utf.html'),
    req('/k2w/koi.html'),
    req('/k2w/koi.html', 'Range: bytes=100-109\r\n'),
    req('/w2k/koi.html'),
    req('/same/utf.html'),
    req('/label/utf.html'),
    req('/var/utf.html'),
    req('/var/utf.html?cs=win'),
    req('/var/utf.html?cs=koi'),
    req('/var/utf.html?cs=other'),
    req('/types/koi.css'),
    req('/types/koi.html'),
    req('/types/koi.txt'),
    req('/types-xml/koi.bin'),
    req('/any/koi.bin'),
    req('/ret/?t=%C1%C2'),
    req('/redir/'),
    req('/missing/nothing.html'),
    req('/p/x'),
    req('/po/x'),
    req('/po/quoted'),
    req('/po/unknown'),
    req('/po/gz'),
    req('/pw/accel'),
  ]
  const diffs: string[] = []
  for (const c of cases) {
    const [theirs, mine] = [await seen(theirAddr, c), await seen(ourAddr, c)]
    for (const k of ['line', 'fields', 'body'] as const) {
      if (theirs[k] !== mine[k]) diffs.push(`${c.split('\r\n')[0]} ${k}\n  nginx: ${theirs[k].slice(0, 400)}\n  ours:  ${mine[k].slice(0, 400)}`)
    }
  }
  assert.deepEqual(diffs, [])
  // Not vacuous: koi8-r's 0xC1 is Cyrillic а, sent as UTF-8 in a chunked answer.
  const r = await seen(ourAddr, req('/k2u/koi.html'))
  assert.ok(r.body.includes(Buffer.from('а').toString('hex')))
  assert.match(r.fields, /content-type: text\/html; charset=utf-8 \| content-length: - \| transfer-encoding: chunked/)
})

test('charset_map and charset values nginx refuses are refused in its words', { skip: nginxMissing }, async () => {
  const dir = await makeFixtures()
  for (const line of [
    'charset_map koi8-r koi8-r { }',
    'charset_map koi8-r utf-8 { } charset_map utf-8 koi8-r { }',
    'charset_map koi8-r windows-1251 { ZZ 41; }',
    'charset_map koi8-r windows-1251 { 100 41; }',
    'charset_map koi8-r windows-1251 { 41 42 43; }',
    'charset_map koi8-r utf-8 { C1 F09F9880; }',
    'charset_map koi8-r utf-8 { C1 D0XY; }',
    'server { location / { charset windows-1251; source_charset koi8-r; } }',
    'charset utf-8; charset koi8-r;',
    'override_charset maybe;',
    'server { charset $nonexistent; }',
  ]) {
    await assertRefusedAsNginx(dir, line)
  }
})
