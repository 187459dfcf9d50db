import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { checkVclFile, VclError } from '../src/vcl/index.js'
import { ROUTER_CLI } from './router-process.js'
import { skipWithoutVarnishd, VARNISHD, varnishWorkdir } from './vcl-varnishd.js'

// The broken-VCL battery (issue 15): every file goes through `varnishd -C -f FILE`,
// `caching-router -C -f FILE` and a `caching-router -f FILE` start-up. Whatever varnishd refuses
// we refuse, before listening, with `Message from VCC-compiler:` and `file:line:col: problem`;
// nothing ever ends in a stack trace. The fixtures are in fixtures/broken-vcl/; the bombs too
// big to check in are generated below.

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/broken-vcl/', import.meta.url))
const H = 'vcl 4.1;\nbackend default { .host = "127.0.0.1"; .port = "8080"; }\n'
const nestedIf = (n: number) => `${H}sub vcl_recv {\n${'if (req.url) {\n'.repeat(n)}return (pass);\n${'}\n'.repeat(n)}}\n`

/** Generated files: name -> text. */
const GENERATED: Record<string, string> = {
  'nested-if-10000.vcl': nestedIf(10_000),
  'nested-if-200.vcl': nestedIf(200),
  'nested-parens-10000.vcl': `${H}sub vcl_recv {\n if (${'('.repeat(10_000)}req.url == "/"${')'.repeat(10_000)}) { return (pass); }\n}\n`,
  'nested-blocks-10000.vcl': `${H}sub vcl_recv {\n${'{\n'.repeat(10_000)}${'}\n'.repeat(10_000)}}\n`,
  'unary-not-10000.vcl': `${H}sub vcl_recv {\n if (${'!'.repeat(10_000)}req.url) { return (pass); }\n}\n`,
  'concat-100000.vcl': `${H}sub vcl_recv {\n set req.http.x = ${Array(100_000).fill('"a"').join(' + ')};\n}\n`,
  'call-chain-5000.vcl': `${H}${Array.from({ length: 5000 }, (_, i) => `sub s${i} { call s${i + 1}; }\n`).join('')}sub s5000 { }\nsub vcl_recv { call s0; }\n`,
  'huge-identifier-1mb.vcl': `${H}${'a'.repeat(1 << 20)};\n`,
  'huge-string-1mb.vcl': `${H}sub vcl_recv {\n set req.http.x = "${'a'.repeat(1 << 20)}";\n}\n`,
  'many-backends-unused.vcl': `vcl 4.1;\n${Array.from({ length: 2000 }, (_, i) => `backend b${i} { .host = "127.0.0.1"; .port = "8080"; }\n`).join('')}`,
}

/**
 * Where we part from varnishd on purpose (README, "Broken VCL files"). `takes-minutes`: varnishd
 * runs for minutes on it (not waited for); we compile or refuse it in one line at once.
 */
const KNOWN: Record<string, 'ours-accepts-3.0' | 'stricter' | 'takes-minutes'> = {
  'no-version.vcl': 'ours-accepts-3.0',
  'backend-port-out-of-range.vcl': 'stricter',
  'version-twice.vcl': 'stricter',
  'operator-on-bool.vcl': 'stricter',
  'nul-byte-top-level.vcl': 'stricter',
  'concat-100000.vcl': 'stricter',
  'nested-parens-10000.vcl': 'stricter',
  'nested-if-10000.vcl': 'takes-minutes',
  'nested-blocks-10000.vcl': 'takes-minutes',
  'call-chain-5000.vcl': 'takes-minutes',
}

interface Run {
  code: number | null
  output: string
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? null) : 0
      resolve({ code: typeof code === 'number' ? code : null, output: `${stdout}${stderr}` })
    })
  })
}

/** The compiler on FILE, in this process: a VclError (refused) or nothing (accepted); anything else fails. */
async function ourCheck(file: string): Promise<{ ok: boolean; output: string }> {
  try {
    await checkVclFile(file)
    return { ok: true, output: '' }
  } catch (err) {
    assert.ok(err instanceof VclError, `${file}: not a VclError: ${(err as Error).stack}`)
    return { ok: false, output: err.message }
  }
}

/** `caching-router -f FILE -a 127.0.0.1:0`: did it listen before it exited (60 s at most)? */
function startUp(file: string): Promise<Run & { listened: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [ROUTER_CLI, '-f', file, '-a', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    let listened = false
    const onData = (c: Buffer) => {
      output += c.toString()
      if (!listened && /listening on /.test(output)) {
        listened = true
        child.kill('SIGKILL')
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, output, listened })
    })
  })
}

const names = [...(await readdir(FIXTURES)).filter((f) => f.endsWith('.vcl')).sort(), ...Object.keys(GENERATED)]
const STACK = /\n\s+at [^\n]*[(:]\d+/
const score = { files: 0, bothRefuse: 0, sameWords: 0, samePlace: 0 }

describe('broken VCL battery: caching-router vs varnishd -C', { skip: skipWithoutVarnishd, concurrency: 2 }, () => {
  let dir = ''
  let workdir = ''
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'broken-vcl-'))
    await chmod(dir, 0o755)
    for (const [name, text] of Object.entries(GENERATED)) await writeFile(join(dir, name), text)
    workdir = await varnishWorkdir('broken-vcl-n-')
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
    await rm(workdir, { recursive: true, force: true })
    // The score the issue asks for, in the test output.
    process.stdout.write(`# broken-vcl battery: ${JSON.stringify(score)}\n`)
  })

  test('the battery has at least 60 broken files', () => {
    assert.ok(names.length >= 60, String(names.length))
  })

  for (const name of names) {
    test(name, async () => {
      const file = name in GENERATED ? join(dir, name) : join(FIXTURES, name)
      const known = KNOWN[name]
      const [ours, boot, theirs] = await Promise.all([
        ourCheck(file),
        startUp(file),
        known === 'takes-minutes' ? Promise.resolve(undefined) : run(VARNISHD, ['-C', '-n', workdir, '-f', file], 60_000),
      ])
      score.files++
      assert.doesNotMatch(boot.output, STACK, `a stack trace:\n${boot.output.slice(0, 2000)}`)
      const oursRefuses = !ours.ok
      // The CLI and the compiler agree, and a refused file never listens.
      assert.equal(boot.listened, ours.ok, `start-up ${boot.listened ? 'listened' : 'refused'}:\n${boot.output.slice(0, 2000)}`)
      if (oursRefuses) {
        assert.equal(boot.code, 2, boot.output.slice(0, 2000))
        assert.match(boot.output, /^Message from VCC-compiler:\n\S[^\n]*\.vcl:\d+:\d+: \S/m, boot.output.slice(0, 2000))
        assert.equal(boot.output.split('\n')[1], ours.output.split('\n')[0], 'the CLI prints the compiler\'s line')
      }
      if (known === 'takes-minutes') return
      const theirsRefuse = theirs?.code !== 0
      if (known === 'ours-accepts-3.0') {
        assert.equal(theirsRefuse, true)
        assert.equal(oursRefuses, false, 'read as the VCL 3.0 dialect (README)')
        return
      }
      if (theirsRefuse) {
        assert.equal(oursRefuses, true, `varnishd refuses it, we accept it:\n${theirs?.output.slice(0, 1500)}`)
        score.bothRefuse++
        const problem = (/\.vcl:\d+:\d+: ([^\n]*)/.exec(ours.output)?.[1] ?? '').trim()
        if (problem !== '' && theirs?.output.includes(problem)) score.sameWords++
        const where = /Line (\d+) Pos (\d+)/.exec(theirs?.output ?? '')
        const at = /\.vcl:(\d+):(\d+): /.exec(ours.output)
        if (where && at && where[1] === at[1] && where[2] === at[2]) score.samePlace++
      } else if (oursRefuses) {
        assert.equal(known, 'stricter', `varnishd accepts it and we refuse it (add it to KNOWN and the README if on purpose):\n${ours.output.slice(0, 1500)}`)
      }
    })
  }
})
