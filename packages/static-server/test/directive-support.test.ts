import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { SUPPORT } from '../src/config/directive-support.js'
import { type Context, DIRECTIVES } from '../src/config/directives.js'
import { loadNginxConf } from '../src/config/nginx-conf.js'
import { REPO } from './helpers.js'

/**
 * No silent no-ops: every directive static-server accepts is implemented (and a behavioural
 * test names it), refused at load (always, or for the values it does not implement), or a
 * no-op listed in the README because nginx's effect is nothing observable.
 */
const PKG = join(REPO, 'packages/static-server')
/** Test files that only check loading, not behaviour. */
const NOT_BEHAVIOUR = new Set(['directive-support.test.ts', 'broken-conf.test.ts', 'nginx-conf.test.ts'])

/** A value nginx takes for each refused-by-value directive, and the one we refuse. */
const REFUSED_VALUE: Record<string, [accepted: string, refused: string]> = {
  daemon: ['off', 'on'],
  gzip: ['off', 'on'],
  gzip_vary: ['off', 'on'],
  gzip_proxied: ['off', 'any'],
  open_file_cache_errors: ['off', 'on'],
  chunked_transfer_encoding: ['on', 'off'],
  reset_timedout_connection: ['off', 'on'],
  ignore_invalid_headers: ['on', 'off'],
  ssi_ignore_recycled_buffers: ['off', 'on'],
}
const REFUSED_ARGS: Record<string, string> = {
  user: 'nobody',
  worker_rlimit_nofile: '4096',
  worker_shutdown_timeout: '5s',
  load_module: 'modules/x.so',
  zone: 'z 64k',
  ssi: 'on',
  ssi_types: 'text/x',
  ssi_silent_errors: 'on',
  ssi_last_modified: 'on',
  ssi_min_file_chunk: '1k',
  ssi_value_length: '256',
}

function confWith(ctx: Context, line: string): string {
  switch (ctx) {
    case 'main':
      return `${line}\nevents {}\n`
    case 'events':
      return `events {\n${line}\n}\n`
    case 'upstream':
      return `events {}\nhttp {\n    upstream u {\n        ${line}\n        server 127.0.0.1:1;\n    }\n}\n`
    default:
      return `events {}\nhttp {\n    ${line}\n}\n`
  }
}

async function load(dir: string, text: string): Promise<string | undefined> {
  const file = join(dir, 'nginx.conf')
  await writeFile(file, text)
  try {
    await loadNginxConf({ file, prefix: dir })
    return undefined
  } catch (err) {
    return (err as Error).message
  }
}

test('every directive in the table is implemented, refused or a documented no-op', async () => {
  const readme = await readFile(join(PKG, 'README.md'), 'utf8')
  const noOpSection = readme.slice(readme.indexOf('## Accepted and ignored'))
  assert.ok(noOpSection.length < readme.length, 'the README has its no-op section')
  const tests: string[] = []
  for (const f of await readdir(join(PKG, 'test'))) {
    if (f.endsWith('.ts') && !NOT_BEHAVIOUR.has(f)) tests.push(await readFile(join(PKG, 'test', f), 'utf8'))
  }
  const dir = await mkdtemp(join(tmpdir(), 'directive-support-'))
  const problems: string[] = []
  for (const [name, spec] of DIRECTIVES) {
    const s = SUPPORT.get(name)
    if (s === undefined) {
      problems.push(`${name}: neither implemented, refused nor a documented no-op`)
      continue
    }
    const ctx = spec.contexts.includes('http') ? 'http' : (spec.contexts[0] as Context)
    if (s.kind === 'implemented') {
      const used = new RegExp(`(^|[\\s{'"\`])${name} `, 'm')
      if (!tests.some((t) => used.test(t))) problems.push(`${name}: implemented, but no behavioural test uses it`)
    } else if (s.kind === 'no-op') {
      if (!noOpSection.includes(`\`${name}\``)) problems.push(`${name}: a no-op missing from the README's list`)
    } else if (s.kind === 'partial') {
      const values = REFUSED_VALUE[name]
      if (!values) {
        problems.push(`${name}: no sample values in this test`)
        continue
      }
      const ok = await load(dir, confWith(ctx, `${name} ${values[0]};`))
      if (ok !== undefined) problems.push(`${name} ${values[0]}: refused: ${ok}`)
      const no = await load(dir, confWith(ctx, `${name} ${values[1]};`))
      if (no === undefined || !no.includes('not supported') || !no.includes('nginx.conf:')) problems.push(`${name} ${values[1]}: ${no ?? 'accepted'}`)
    } else {
      const args = REFUSED_ARGS[name]
      if (args === undefined) {
        problems.push(`${name}: no sample arguments in this test`)
        continue
      }
      const no = await load(dir, confWith(ctx, `${name}${args ? ` ${args}` : ''}${args.endsWith('}') ? '' : ';'}`))
      if (no === undefined || !/not supported|cannot|does not/.test(no) || !no.includes('nginx.conf:')) problems.push(`${name}: ${no ?? 'accepted'}`)
    }
  }
  for (const name of SUPPORT.keys()) if (!DIRECTIVES.has(name)) problems.push(`${name}: in the support table, not a directive`)
  assert.deepEqual(problems, [])
})
