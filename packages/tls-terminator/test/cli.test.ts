import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { certLines, freePort, haveStunnel, STUNNEL, scratch, writeConf } from './helpers.js'

/** stunnel's own command-line forms (stunnel(8)), run on ours and, where installed, on stunnel. */

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url))

/** Runs a program to its exit (bounded), with `file` open as descriptor 3 when given. */
async function run(cmd: string[], file?: string): Promise<{ code: number | null; out: string }> {
  const handle = file ? await open(file, 'r') : undefined
  try {
    const child = spawn(cmd[0] as string, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe', ...(handle ? [handle.fd] : [])] })
    let out = ''
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString()
    })
    child.stderr?.on('data', (c: Buffer) => {
      out += c.toString()
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    const [code] = (await once(child, 'exit')) as [number | null]
    clearTimeout(timer)
    return { code, out }
  } finally {
    await handle?.close()
  }
}

const ours = (...args: string[]) => [process.execPath, CLI, ...args]

describe('the command line, as stunnel takes it', () => {
  test('-fd N reads the configuration from a descriptor; its errors read N:LINE, exit 1', async (t) => {
    const dir = await scratch(t)
    const bad = await writeConf(dir, [...certLines, '[x]', 'accept = 127.0.0.1:0', 'connect = 1', 'bogus = 1'])
    const r = await run(ours('-fd', '3'), bad)
    assert.equal(r.code, 1)
    assert.match(r.out, /^tls-terminator: 3:6: option "bogus" is not supported$/m)
    if (haveStunnel()) {
      const s = await run([STUNNEL, '-fd', '3'], bad)
      assert.equal(s.code, r.code)
      assert.match(s.out, /3:6: "bogus = 1": Specified option name is not valid here/)
    }
    const good = await writeConf(dir, [...certLines, '[x]', 'accept = 127.0.0.1:0', 'connect = 1'], 'good.conf')
    const ok = await run(ours('-FD', '3', '-t'), good)
    assert.equal(ok.code, 0, ok.out)
    assert.match(ok.out, /^3: configuration OK/m)
    const missing = await run(ours('-fd'))
    assert.equal(missing.code, 2)
    assert.match(missing.out, /-fd: no file descriptor specified/)
  })

  test('-help and -version print and exit 0, as stunnel', async () => {
    for (const form of ['-help', '-version', '-VERSION']) {
      const r = await run(ours(form))
      assert.equal(r.code, 0, `${form}: ${r.out}`)
      assert.match(r.out, /tls-terminator/)
      if (haveStunnel()) assert.equal((await run([STUNNEL, form])).code, 0)
    }
  })

  test('output = FILE: foreground = yes logs to the terminal as well, foreground = quiet only to the file', async (t) => {
    const dir = await scratch(t)
    /** Starts the program, waits for its log file to say it listens, stops it; what did the terminal get? */
    const terminal = async (cmd: string[], foreground: string, ready: RegExp) => {
      const log = join(dir, `${foreground}-${cmd.length}.log`)
      const conf = await writeConf(
        dir,
        [`foreground = ${foreground}`, `output = ${log}`, ...certLines, '[x]', `accept = 127.0.0.1:${await freePort()}`, 'connect = 1'],
        `${foreground}-${cmd.length}.conf`,
      )
      const child = spawn(cmd[0] as string, [...cmd.slice(1), conf], { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString()
      })
      child.stderr.on('data', (c: Buffer) => {
        out += c.toString()
      })
      const exited = once(child, 'exit')
      t.after(() => {
        if (child.exitCode === null) child.kill('SIGKILL')
      })
      for (let i = 0; i < 200 && !ready.test(await readFile(log, 'utf8').catch(() => '')); i++) await new Promise((r) => setTimeout(r, 25))
      assert.match(await readFile(log, 'utf8'), ready)
      child.kill('SIGTERM')
      await exited
      return out.length > 0
    }
    const oursSays = /listening on 127\.0\.0\.1:/
    assert.equal(await terminal(ours(), 'yes', oursSays), true)
    assert.equal(await terminal(ours(), 'quiet', oursSays), false)
    if (haveStunnel()) {
      const stunnelSays = /Configuration successful/
      assert.equal(await terminal([STUNNEL], 'yes', stunnelSays), true)
      assert.equal(await terminal([STUNNEL], 'quiet', stunnelSays), false)
    }
  })

  test('SIGUSR1 reopens the output file after a rotation (stunnel, logrotate), and never opens the inspector', async (t) => {
    const dir = await scratch(t)
    const log = join(dir, 'tls.log')
    const conf = await writeConf(dir, ['foreground = quiet', `output = ${log}`, ...certLines, '[x]', 'accept = 127.0.0.1:0', 'connect = 1'])
    const child = spawn(process.execPath, [CLI, conf], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString()
    })
    const exited = once(child, 'exit')
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL')
    })
    const waitForLog = async (file: string, re: RegExp) => {
      for (let i = 0; i < 200 && !re.test(await readFile(file, 'utf8').catch(() => '')); i++) await new Promise((r) => setTimeout(r, 25))
      assert.match(await readFile(file, 'utf8').catch(() => ''), re)
    }
    await waitForLog(log, /listening on/)
    await rename(log, `${log}.1`)
    child.kill('SIGUSR1')
    await waitForLog(log, /SIGUSR1: log file reopened/)
    child.kill('SIGTERM')
    const [code] = await exited
    assert.equal(code, 0)
    assert.doesNotMatch(out, /Debugger listening/)
    assert.match(await readFile(log, 'utf8'), /stopped/)
  })
})
