import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { access, chmod, mkdtemp, readFile, rm } from 'node:fs/promises'
import http, { STATUS_CODES } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createRequestContext, startResponse, VclProgram } from '../src/vcl/index.js'

// Differential semantics: the same VCL runs in the real varnishd and in our compiler, and the
// same requests must produce the same X-* headers (regsub, std.*, conversions, ACLs, regexes).
// The VCL answers from vcl_synth, so no backend is involved on either side.
const FILE = fileURLToPath(new URL('../../test/fixtures/vcl/semantics/expressions.vcl', import.meta.url))
const VARNISHD = '/usr/sbin/varnishd'
const VARNISHADM = '/usr/bin/varnishadm'

const installed = await Promise.all([access(VARNISHD), access(VARNISHADM)]).then(
  () => true,
  () => false,
)

interface Case {
  readonly method: string
  readonly url: string
  readonly headers: Record<string, string>
}

const CASES: Case[] = [
  { method: 'GET', url: '/api/users?utm_source=x&b=1', headers: { Host: 'Example.COM', 'X-In': 'abcD', 'X-Num': '12', Cookie: 'a=1; lang=fr; z=2' } },
  { method: 'GET', url: '/img/Photo.JPG', headers: { Host: 'example.com', 'X-In': 'xyz', 'X-Num': 'abc' } },
  { method: 'GET', url: '/', headers: { Host: 'h' } },
  { method: 'GET', url: '/a/b/c?utm_medium=m&utm_source=s', headers: { Host: 'h', 'X-Num': '-4', 'X-In': 'ABCD' } },
  { method: 'GET', url: '/Mixed/Case.jpeg?x=1', headers: { Host: 'Example.com:8080', 'X-In': 'ABCd', 'X-Num': '+5', Cookie: 'lang=de' } },
  { method: 'GET', url: '/n', headers: { Host: 'h', 'X-Num': ' 7' } },
  { method: 'GET', url: '/n', headers: { Host: 'h', 'X-Num': '0012' } },
  { method: 'GET', url: '/n', headers: { Host: 'h', 'X-Num': '1234567890123456' } },
  { method: 'HEAD', url: '/api/x.png', headers: { Host: 'H', 'X-Num': '10', 'X-In': '' } },
]

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 10_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)))
  })
}

function send(port: number, c: Case): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: c.method, path: c.url, headers: c.headers, agent: false }, (res) => {
      res.resume()
      res.on('end', () => {
        const out: Record<string, string> = {}
        for (const [k, v] of Object.entries(res.headers)) if (k.startsWith('x-') && k !== 'x-varnish') out[k] = String(v)
        out.status = String(res.statusCode)
        resolve(out)
      })
    })
    req.on('error', reject)
    req.end()
  })
}

function ours(program: VclProgram, c: Case): Record<string, string> {
  const raw = Object.entries(c.headers).flat()
  const ip = { address: '127.0.0.1', port: 40000, family: 4 as const }
  const ctx = createRequestContext({ method: c.method, url: c.url, proto: 'HTTP/1.1', headers: raw, client: ip, local: ip, xid: '2' })
  const r = program.run('recv', ctx)
  assert.equal(r.action, 'synth')
  const status = r.status ?? 503
  startResponse(ctx, { status, reason: r.reason ?? STATUS_CODES[status] ?? 'Unknown', headers: [] })
  assert.equal(program.run('synth', ctx).action, 'deliver')
  const out: Record<string, string> = {}
  const h = ctx.resp?.http.toRaw() ?? []
  for (let i = 0; i < h.length; i += 2) {
    const name = (h[i] as string).toLowerCase()
    if (name.startsWith('x-')) out[name] = h[i + 1] as string
  }
  out.status = String(ctx.resp?.status)
  return out
}

describe('VCL semantics: caching-router vs varnishd on the same requests', { skip: installed ? false : 'varnishd/varnishadm not installed' }, () => {
  let varnishd: ChildProcess | undefined
  let workdir = ''
  let port = 0

  test('start varnishd on 127.0.0.1:0 with the VCL', async () => {
    workdir = await mkdtemp(join(tmpdir(), 'vcl-sem-'))
    await chmod(workdir, 0o755)
    varnishd = spawn(VARNISHD, ['-F', '-n', workdir, '-a', '127.0.0.1:0', '-T', '127.0.0.1:0', '-f', FILE, '-s', 'malloc,16m'], { stdio: 'ignore' })
    // Bounded wait for the listener (varnishadm answers once the child runs).
    for (let i = 0; i < 100 && port === 0; i++) {
      const out = await run(VARNISHADM, ['-n', workdir, 'debug.listen_address']).catch(() => '')
      const m = /127\.0\.0\.1 (\d+)/.exec(out)
      if (m) port = Number(m[1])
      else await sleep(100)
    }
    assert.ok(port > 0, 'varnishd did not start listening')
  })

  test('same X-* headers for every request', async () => {
    const program = new VclProgram('semantics', { name: FILE, text: await readFile(FILE, 'utf8') })
    for (const c of CASES) {
      const theirs = await send(port, c)
      assert.ok(Object.keys(theirs).length > 20, 'varnishd answered with the X-* headers')
      assert.deepEqual(ours(program, c), theirs, `${c.method} ${c.url}`)
    }
  })

  test('stop varnishd', async () => {
    if (varnishd && varnishd.exitCode === null) {
      const exited = new Promise((resolve) => varnishd?.once('exit', resolve))
      varnishd.kill('SIGTERM')
      await exited
    }
    if (workdir) await rm(workdir, { recursive: true, force: true })
  })
})
