import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { cp, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { ConfigError } from '@edgestack/common'
import { loadNginxConf } from '../src/config/nginx-conf.js'
import { NGINX, nginxMissing, REPO } from './helpers.js'

/**
 * The broken-file battery: every file in test/broken-conf/ (and the generated ones below,
 * too large or too deep to check in) goes through `nginx -t` and `static-server -t`. Where
 * nginx refuses a file we must refuse it too, in nginx's words and at nginx's `file:line`,
 * without a stack trace; where nginx accepts one we accept it, except for the refusals
 * listed in WE_REFUSE (each one is in DIFFERENCES.md).
 */
const FIXTURES = join(REPO, 'packages/static-server/test/broken-conf')
const CLI = join(REPO, 'packages/static-server/dist/src/cli.js')

/** Files nginx accepts and we refuse on purpose, with why. */
const WE_REFUSE: Record<string, string> = {
  'gen-nested-locations.conf': 'blocks nested deeper than 100 levels are refused in one line (nginx compiles 5,000)',
  'stub-status-workers.conf': "each worker counts its own connections: a worker's stub_status page would show a fraction (--metrics sums them)",
}

/** Files both refuse where our words differ from nginx's, with why. */
const OTHER_WORDS: Record<string, string> = {
  // nginx recurses until its stack overflows (SIGSEGV); we name the loop.
  'include-loop-pair.conf': 'nginx crashes',
  'gen-nested-unclosed.conf': 'nginx crashes',
  // nginx prints the raw bytes of a name that is not UTF-8; we read the file as UTF-8.
  'latin1-directive.conf': 'non-UTF-8 bytes are printed as U+FFFD',
  'utf16-file.conf': 'non-UTF-8 bytes are printed as U+FFFD',
  // Regexes are compiled by V8: its messages, not PCRE2's.
  'location-bad-regex.conf': "V8's regex messages",
  'rewrite-bad-regex.conf': "V8's regex messages",
}

/** Cases too large or too deep to keep as files. */
function generated(article: string): Record<string, string> {
  const server = 'events {}\nhttp {\n    server {\n        listen 127.0.0.1:8081;\n'
  const out: Record<string, string> = {
    'gen-huge-token.conf': `events {}\nworker_processes ${'a'.repeat(1 << 20)};\n`,
    'gen-huge-token-quoted.conf': `events {}\nhttp {\n    root "${'a'.repeat(1 << 20)}";\n}\n`,
    'gen-token-4096.conf': `events {}\nhttp {\n    root /${'a'.repeat(4095)};\n}\n`,
    'gen-token-4095.conf': `events {}\nhttp {\n    root /${'a'.repeat(4094)};\n}\n`,
    'gen-long-comment.conf': `events {}\n#${'c'.repeat(8000)}\n`,
    'gen-nested-locations.conf': `${server}${'location /a {\n'.repeat(5000)}${'}\n'.repeat(5000)}    }\n}\n`,
    'gen-nested-unclosed.conf': `${server}${'location /a {\n'.repeat(100_000)}`,
    'gen-brace-bomb.conf': `events {}\n${'{'.repeat(100_000)}`,
    'gen-many-args.conf': `events {}\nhttp {\n    index ${'a '.repeat(200_000)};\n}\n`,
    'gen-include-chain.conf': 'events {}\nhttp {\n    include chain-0.inc;\n}\n',
  }
  // The article's file cut short at a few places: every cut is an unfinished block or directive.
  for (const at of [0.2, 0.45, 0.6, 0.75, 0.9, 0.97]) {
    const cut = article.slice(0, Math.floor(article.length * at))
    out[`gen-truncated-${Math.round(at * 100)}.conf`] = cut
  }
  return out
}

async function writeGenerated(dir: string): Promise<void> {
  const article = (await readFile(join(REPO, 'config/nginx.conf'), 'utf8')).replaceAll('include mime.types;', '')
  for (const [name, text] of Object.entries(generated(article))) await writeFile(join(dir, name), text)
  for (let i = 0; i < 300; i++) {
    await writeFile(join(dir, `chain-${i}.inc`), i < 299 ? `include chain-${i + 1}.inc;\n` : 'default_type text/plain;\n')
  }
}

interface Outcome {
  ok: boolean
  /** The first `[emerg]` problem, `in FILE:LINE` included, without nginx's time and pid. */
  words: string
  stderr: string
}

function run(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000, maxBuffer: 16 << 20, encoding: 'latin1' }, (err, _out, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr })
    })
  })
}

function words(stderr: string): string {
  const line = stderr.split('\n').find((l) => l.includes('[emerg]')) ?? ''
  return line.replace(/^.*?\[emerg\] (\d+#\d+: )?/, '')
}

async function nginxT(dir: string, file: string): Promise<Outcome> {
  const r = await run(NGINX, ['-t', '-q', '-e', 'stderr', '-p', dir, '-c', join(dir, file)])
  return { ok: r.code === 0, words: words(r.stderr), stderr: r.stderr }
}

/** `static-server` without -t on a file it must refuse: it exits 1 without binding anything. */
function oursStart(dir: string, file: string): Promise<{ code: number | null; stderr: string; listened: boolean }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, '-p', dir, '-c', join(dir, file)], { timeout: 30_000, encoding: 'latin1' }, (err, out, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? null) : 0
      resolve({ code, stderr, listened: /listening on/.test(out + stderr) })
    })
    child.stdin?.end()
  })
}

/** `static-server -t`, spawned: what a user sees. */
async function oursCli(dir: string, file: string): Promise<Outcome> {
  const r = await run(process.execPath, [CLI, '-t', '-q', '-p', dir, '-c', join(dir, file)])
  return { ok: r.code === 0, words: words(r.stderr), stderr: r.stderr }
}

/**
 * What `-t` runs, in this process (a node start per file would cost a minute): any error but a
 * ConfigError is a crash the CLI would print with its stack.
 */
async function oursT(dir: string, file: string): Promise<Outcome> {
  try {
    await loadNginxConf({ file: join(dir, file), prefix: dir })
    return { ok: true, words: '', stderr: '' }
  } catch (err) {
    const e = err as Error
    if (!(err instanceof ConfigError)) return { ok: false, words: '', stderr: `${e.stack}` }
    // nginx writes a name's bytes as they are; read back as latin1 like nginx's stderr above.
    const bytes = Buffer.from(e.message).toString('latin1')
    return { ok: false, words: words(bytes), stderr: bytes }
  }
}

/** Files also run through the spawned CLI: one of each kind, and the bombs. */
const SPAWNED = [
  'empty.conf',
  'missing-semicolon-listen.conf',
  'duplicate-listen.conf',
  'gen-huge-token.conf',
  'gen-nested-locations.conf',
  'gen-nested-unclosed.conf',
  'gen-brace-bomb.conf',
  'include-loop-pair.conf',
  'nul-in-directive.conf',
  'error-log-missing-dir.conf',
]

test('broken-file battery: static-server -t refuses what nginx -t refuses, in its words', { skip: nginxMissing }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'broken-conf-'))
  await cp(FIXTURES, dir, { recursive: true })
  await writeGenerated(dir)
  const files = (await readdir(dir)).filter((f) => f.endsWith('.conf')).sort()
  assert.ok(files.length >= 60, `${files.length} files`)
  let refused = 0
  let sameWords = 0
  const problems: string[] = []
  // Two at a time: the machine is shared.
  const queue = [...files]
  const worker = async () => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
      const [n, o] = await Promise.all([nginxT(dir, f), oursT(dir, f)])
      if (/\n\s+at /.test(o.stderr)) problems.push(`${f}: a stack trace:\n${o.stderr.slice(0, 600)}`)
      o.words = o.words.slice(0, 300)
      n.words = n.words.slice(0, 300)
      if (n.ok) {
        if (!o.ok && WE_REFUSE[f] === undefined) problems.push(`${f}: nginx accepts it, we refuse: ${o.words || o.stderr}`)
        if (o.ok && WE_REFUSE[f] !== undefined) problems.push(`${f}: listed in WE_REFUSE but accepted`)
        continue
      }
      refused++
      if (o.ok) {
        problems.push(`${f}: nginx refuses (${n.words || n.stderr.trim()}), we start`)
        continue
      }
      if (o.words === n.words) sameWords++
      else if (OTHER_WORDS[f] === undefined) problems.push(`${f}:\n  nginx: ${n.words}\n  ours:  ${o.words || o.stderr}`)
      else if (!/^\S.* in \S+:\d+$/.test(o.words)) problems.push(`${f}: ${o.words || o.stderr} is not one line with file:line`)
    }
  }
  await Promise.all([worker(), worker()])
  for (const f of SPAWNED) {
    const [n, o] = await Promise.all([nginxT(dir, f), oursCli(dir, f)])
    if (o.ok !== n.ok && WE_REFUSE[f] === undefined) problems.push(`${f}: static-server -t ${o.ok ? 'accepts' : 'refuses'} it, nginx -t does not`)
    if (/\n\s+at /.test(o.stderr)) problems.push(`${f}: static-server -t printed a stack trace`)
    if (!o.ok && !n.ok && OTHER_WORDS[f] === undefined && o.words !== n.words) problems.push(`${f}: static-server -t says ${o.words}`)
    if (!n.ok) {
      // Started for real, the same file stops it before any port is bound.
      const started = await oursStart(dir, f)
      if (started.code !== 1 || started.listened || /\n\s+at /.test(started.stderr)) {
        problems.push(`${f}: static-server started with exit ${started.code}, listened ${started.listened}: ${started.stderr.slice(0, 300)}`)
      }
    }
  }
  t.diagnostic(`${files.length} files; nginx refuses ${refused}; we refuse all of them, ${sameWords} in nginx's words`)
  assert.deepEqual(problems, [])
})
