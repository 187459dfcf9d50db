import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, symlink, truncate, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { get, makeFixtures, nginxMissing, type RawResponse, startBoth } from './helpers.js'
import { assertRefusedAsNginx, httpHead } from './nginx-test-conf.js'

/**
 * ngx_http_autoindex_module's formats under both programs on one directory: html (exact and
 * rounded sizes, GMT and local times), xml, json and jsonp with its callback rules. The
 * directory holds the sizes at each rounding edge (sparse files up to gigabytes), names
 * that need HTML, URI and JSON escapes, a long one, a subdirectory, a broken symlink and a
 * FIFO (type "other").
 */
const SIZES = [0, 511, 9999, 10000, 10751, 10752, 1048575, 1048576, 1572863, 1572864, 1610612735, 1610612736]

async function listing(dir: string): Promise<void> {
  const list = join(dir, 'list')
  await mkdir(join(list, 'sub dir'), { recursive: true })
  const names: string[] = []
  for (const n of SIZES) {
    const name = `size-${n}.bin`
    await writeFile(join(list, name), '')
    await truncate(join(list, name), n)
    names.push(name)
  }
  for (const name of ['a&b<c>"d".txt', "it's.txt", '!$()*,;=@[]^`{|}~:-_+?.txt', 'ünïcödé.txt', 'ctl\x01\ttab\nline.txt', 'back\\slash.txt', `${'long'.repeat(20)}.txt`, '.hidden']) {
    await writeFile(join(list, name), 'x')
    names.push(name)
  }
  await symlink(join(list, 'nowhere'), join(list, 'broken-link'))
  execFileSync('mkfifo', [join(list, 'a-fifo')])
  const t = new Date('2024-07-08T09:10:11Z')
  for (const name of [...names, 'sub dir', 'a-fifo']) await utimes(join(list, name), t, t)
  // The list directory itself last, its entries' changes done.
  await utimes(list, t, t)
}

function config(dir: string, port: number, pid: string): string {
  const at = (path: string, extra: string) => `location ${path} { alias ${dir}/list/; autoindex on; ${extra} }`
  return `${httpHead(dir, port, pid)}
    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        root ${dir}/root;
        ${at('/html/', '')}
        ${at('/approx/', 'autoindex_exact_size off;')}
        ${at('/local/', 'autoindex_localtime on;')}
        ${at('/localgmt/', 'autoindex_localtime off; autoindex_exact_size on;')}
        ${at('/xml/', 'autoindex_format xml;')}
        ${at('/json/', 'autoindex_format json; autoindex_exact_size off;')}
        ${at('/jsonp/', 'autoindex_format jsonp;')}
        location /inherit/ {
            autoindex_format json;
            location /inherit/in/ { alias ${dir}/list/; autoindex on; }
        }
    }
}
`
}

const PATHS = [
  '/html/',
  '/approx/',
  '/local/',
  '/localgmt/',
  '/xml/',
  '/json/',
  '/jsonp/?callback=cb',
  '/jsonp/?callback=a.b_C9',
  '/jsonp/?a=1&callback=second&callback=third',
  '/jsonp/',
  '/jsonp/?callback=',
  '/jsonp/?callback=bad-name',
  '/jsonp/?callback=%41',
  `/jsonp/?callback=${'x'.repeat(128)}`,
  `/jsonp/?callback=${'x'.repeat(129)}`,
  '/inherit/in/',
  '/json/sub%20dir/',
]

// Our error pages name us where nginx's name nginx (DIFFERENCES.md).
const seen = (r: RawResponse) =>
  `${r.status} ${r.headers.get('content-type')} ${r.headers.get('transfer-encoding')} ${JSON.stringify(r.body.toString('latin1').replace('<center>static-server</center>', '<center>nginx</center>'))}`

test('differential: autoindex formats, sizes and times as nginx writes them', { skip: nginxMissing }, async (t) => {
  const dir = await makeFixtures()
  await listing(dir)
  // A zone with a half-hour offset and no summer time: autoindex_localtime shows in the listing.
  const tz = process.env.TZ
  process.env.TZ = 'Asia/Kolkata'
  t.after(() => {
    if (tz === undefined) delete process.env.TZ
    else process.env.TZ = tz
  })
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, pid))
  t.after(async () => {
    nginx.kill('SIGKILL')
    await ours.close({ drainTimeoutMs: 0 })
  })
  const diffs: string[] = []
  const answers = new Map<string, string>()
  for (const path of PATHS) {
    for (const method of ['GET', 'HEAD']) {
      const theirs = seen(await get(theirAddr, path, {}, method))
      const mine = seen(await get(ourAddr, path, {}, method))
      answers.set(`${method} ${path}`, theirs)
      if (theirs !== mine) diffs.push(`${method} ${path}\n  nginx ${theirs}\n  ours  ${mine}`)
    }
  }
  assert.deepEqual(diffs, [])
  // The corpus reaches what it means to: local times differ from GMT, rounding happens, a 400.
  assert.notEqual(answers.get('GET /local/'), answers.get('GET /localgmt/'))
  assert.match(answers.get('GET /approx/') ?? '', / {5}2G/)
  assert.match(answers.get('GET /jsonp/?callback=bad-name') ?? '', /^400 /)
})

test('differential: autoindex directives nginx refuses are refused in its words', { skip: nginxMissing }, async () => {
  const dir = await makeFixtures()
  await mkdir(join(dir, 'tmp'), { recursive: true })
  for (const line of ['autoindex_format yaml;', 'autoindex_exact_size maybe;', 'autoindex_localtime 1;', 'autoindex_format json xml;']) {
    await assertRefusedAsNginx(dir, line)
  }
})
