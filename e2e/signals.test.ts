import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { type Daemon, runCli, startDaemon } from './processes.js'

// SIGUSR1 is what logrotate sends nginx and stunnel to reopen their logs, so our daemons get it
// too. Node's default action for it opens the inspector on 127.0.0.1:9229, where any local
// user could run code in the daemon: each CLI must have claimed the signal before that happens.

function get(port: number, path = '/'): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      })
      .on('error', reject)
  })
}

/** Sends SIGUSR1, then proves the daemon still answers and opened no inspector. */
async function survivesSigusr1(d: Daemon): Promise<void> {
  d.child.kill('SIGUSR1')
  // Node starts the inspector from the signal on the main thread: a few round trips later it
  // would have printed its "Debugger listening" line.
  for (let i = 0; i < 5; i++) assert.ok((await get(d.port)) > 0)
  assert.ok(d.alive(), `${d.name} died on SIGUSR1:\n${d.output()}`)
  assert.doesNotMatch(d.output(), /Debugger listening|inspector/i)
}

async function waitForText(file: string, pattern: RegExp): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const text = await readFile(file, 'utf8').catch(() => '')
    if (pattern.test(text)) return text
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${file}: no line matching ${pattern}`)
}

describe('SIGUSR1: no inspector, and logs reopened where the real program reopens them', () => {
  test('caching-router, demo-app and static-server keep serving and open no inspector', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'sigusr1-'))
    const daemons: Daemon[] = []
    t.after(async () => {
      await Promise.all(daemons.map((d) => d.stop()))
      await rm(dir, { recursive: true, force: true })
    })
    daemons.push(await startDaemon('demo-app', ['--listen', '127.0.0.1:0']))
    daemons.push(await startDaemon('static-server', ['--listen', '127.0.0.1:0', '--root', dir]))
    daemons.push(await startDaemon('caching-router', ['-a', '127.0.0.1:0', '-b', `127.0.0.1:${daemons[1]?.port}`]))
    for (const d of daemons) await survivesSigusr1(d)
  })

  test('static-server: after logrotate moved access_log away, SIGUSR1 writes to a new file (nginx -s reopen)', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'reopen-'))
    await mkdir(join(dir, 'html'))
    await writeFile(join(dir, 'html', 'a.txt'), 'a\n')
    const conf = join(dir, 'nginx.conf')
    await writeFile(
      conf,
      `pid ${dir}/run.pid;\nerror_log stderr info;\nevents {}\nhttp { log_format p '$request_uri $status'; access_log ${dir}/access.log p; server { listen 127.0.0.1:0; root ${dir}/html; } }\n`,
    )
    const d = await startDaemon('static-server', ['-p', `${dir}/`, '-c', conf])
    t.after(async () => {
      await d.stop()
      await rm(dir, { recursive: true, force: true })
    })
    assert.equal(await get(d.port, '/a.txt?before'), 200)
    await waitForText(join(dir, 'access.log'), /before/)
    await rename(join(dir, 'access.log'), join(dir, 'access.log.1'))
    await survivesSigusr1(d)
    assert.equal(await get(d.port, '/a.txt?after'), 200)
    const fresh = await waitForText(join(dir, 'access.log'), /after/)
    assert.doesNotMatch(fresh, /before/)
    assert.doesNotMatch(await readFile(join(dir, 'access.log.1'), 'utf8'), /after/)
  })

  test('static-server: a pid file it cannot write stops start-up, as nginx\'s [emerg] open() failed', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'pid-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const conf = join(dir, 'nginx.conf')
    await writeFile(conf, `pid ${dir}/missing/run.pid;\nevents {}\nhttp { access_log off; server { listen 127.0.0.1:0; root ${dir}; } }\n`)
    // Before, the server went on listening with no signal handlers: runCli would time out.
    const r = await runCli('static-server', ['-p', `${dir}/`, '-c', conf])
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /^static-server: \[emerg\] open\(\) ".*\/missing\/run\.pid" failed \(2: No such file or directory\)$/m)
  })
})
