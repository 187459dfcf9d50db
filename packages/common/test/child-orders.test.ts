import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const LATE_CHILD = fileURLToPath(new URL('./fixtures/late-child.js', import.meta.url))

test('a child whose manager went away before it took orders stops once it would take them', async (t) => {
  const child = fork(LATE_CHILD, [], { env: { ...process.env, EDGESTACK_MANAGED: '1' }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let out = ''
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString()
  })
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString()
  })
  await once(child, 'message')
  // The manager is gone, as when it is killed with -9 while its child starts.
  child.disconnect()
  // Bounded: an orphan that serves on is killed here, and the test fails on its exit.
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null]
  clearTimeout(killer)
  assert.equal(signal, null, `the orphaned child had to be killed:\n${out}`)
  assert.equal(code, 0, out)
  assert.match(out, /manager gone: draining/)
})
