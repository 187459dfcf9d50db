import assert from 'node:assert/strict'
import { chown, mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { get, makeFixtures, nginxMissing, startBoth } from './helpers.js'
import { httpHead } from './nginx-test-conf.js'

/**
 * `disable_symlinks` under both programs: files, directories listed by autoindex, index
 * files and alias locations, each reached directly, through a symlink inside the root and
 * through one leading outside it.
 */
function config(dir: string, port: number, pid: string): string {
  return `${httpHead(dir, port, pid)}
    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        root ${dir}/root;
        disable_symlinks on;
        autoindex on;
        location /al/ { alias ${dir}/root/; }
        location /al-plain/ { alias ${dir}/root/plain/; }
        location /al-file { alias ${dir}/root/a.txt; }
        location ~ ^/re/(.*)$ { alias ${dir}/root/$1; }
        location /owner/ { disable_symlinks if_not_owner; alias ${dir}/root/; }
        location /from/ { disable_symlinks on from=$document_root; alias ${dir}/root/; }
        location /off/ { disable_symlinks off; alias ${dir}/root/; }
    }
}
`
}

const PATHS = [
  '/a.txt',
  '/plain/',
  '/plain/one.txt',
  '/link-a.txt',
  '/sym/inside.txt',
  '/sym/outside.txt',
  '/outdir/',
  '/outdir/secret.txt',
  '/outdir',
  '/indir/',
  '/indir/one.txt',
  '/idx/',
  '/withlinks/',
  '/al/a.txt',
  '/al/plain/',
  '/al/plain/one.txt',
  '/al/link-a.txt',
  '/al/outdir/',
  '/al/outdir/secret.txt',
  '/al/indir/one.txt',
  '/al-plain/one.txt',
  '/al-plain/',
  '/al-file',
  '/re/a.txt',
  '/re/link-a.txt',
  '/re/plain/one.txt',
  '/owner/a.txt',
  '/owner/link-a.txt',
  '/owner/sym/outside.txt',
  '/from/a.txt',
  '/from/link-a.txt',
  '/off/link-a.txt',
  '/off/outdir/secret.txt',
]

test('differential: disable_symlinks for files, autoindex, index and alias, as in nginx', { skip: nginxMissing }, async (t) => {
  const dir = await makeFixtures()
  const outside = await mkdtemp(join(tmpdir(), 'symlink-target-'))
  await writeFile(join(outside, 'secret.txt'), 'outside the root\n')
  await symlink(outside, join(dir, 'root/outdir'))
  await symlink(join(dir, 'root/plain'), join(dir, 'root/indir'))
  await mkdir(join(dir, 'root/idx'))
  await symlink(join(outside, 'secret.txt'), join(dir, 'root/idx/index.html'))
  await mkdir(join(dir, 'root/withlinks'))
  await writeFile(join(dir, 'root/withlinks/real.txt'), 'real\n')
  await symlink(outside, join(dir, 'root/withlinks/away'))
  // if_not_owner: links to something another user owns (possible when the test runs as root).
  const paths = [...PATHS]
  await writeFile(join(outside, 'nobody.txt'), 'owned by nobody\n')
  await symlink(join(outside, 'nobody.txt'), join(dir, 'root/to-nobody.txt'))
  await mkdir(join(outside, 'nobody-dir'))
  await writeFile(join(outside, 'nobody-dir/x.txt'), 'x\n')
  await symlink(join(outside, 'nobody-dir'), join(dir, 'root/to-nobody-dir'))
  const chowned = await chown(join(outside, 'nobody.txt'), 65534, 65534)
    .then(() => chown(join(outside, 'nobody-dir'), 65534, 65534))
    .then(() => true, () => false)
  if (chowned) paths.push('/owner/to-nobody.txt', '/owner/to-nobody-dir/x.txt', '/owner/to-nobody-dir/', '/to-nobody.txt')
  else t.diagnostic('not root: the if_not_owner cases with another owner did not run')
  const { nginx, ours, ourAddr, theirAddr } = await startBoth(dir, (port, pid) => config(dir, port, pid))
  t.after(async () => {
    nginx.kill('SIGKILL')
    await ours.close({ drainTimeoutMs: 0 })
  })
  const diffs: string[] = []
  const seen = new Set<number>()
  for (const p of paths) {
    const a = await get(theirAddr, p)
    const b = await get(ourAddr, p)
    seen.add(a.status)
    if (a.status !== b.status) diffs.push(`${p}: nginx ${a.status}, ours ${b.status}`)
    else if (a.status === 200 && !a.body.equals(b.body)) diffs.push(`${p}: bodies differ\n${a.body}\n${b.body}`)
  }
  assert.deepEqual(diffs, [])
  assert.ok(seen.has(200) && seen.has(403) && seen.has(404), `statuses ${[...seen]}`)
})
