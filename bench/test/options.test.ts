import assert from 'node:assert/strict'
import { test } from 'node:test'
import { UsageError } from '@edgestack/common'
import { parseOptions } from '../options.js'

test('`npm run bench --quick` reaches the harness as npm_config_quick', () => {
  const o = parseOptions([], { npm_config_quick: 'true' })
  assert.equal(o.quick, true)
  assert.equal(o.rounds, 1)
  assert.equal(o.durationS, 1)
  assert.equal(o.warmupS, 0)
})

test('`npm run bench -- --quick` and explicit flags', () => {
  assert.equal(parseOptions(['--quick'], {}).quick, true)
  const o = parseOptions(['-c', '8', '-d', '2', '--rounds', '5', '--only', '3,4'], {})
  assert.equal(o.quick, false)
  assert.deepEqual([o.connections, o.durationS, o.rounds, o.only], [8, 2, 5, [3, 4]])
  assert.equal(parseOptions([], { npm_config_quick: 'false' }).quick, false)
  assert.equal(parseOptions([], {}).stunnelDebug, 5)
  assert.equal(parseOptions(['--stunnel-debug', '3'], {}).stunnelDebug, 3)
})

test('bad flags are usage errors naming the flag', () => {
  assert.throws(() => parseOptions(['--rounds', 'two'], {}), (e: unknown) => e instanceof UsageError && /--rounds/.test(e.message))
  assert.throws(() => parseOptions(['--only', '120'], {}), /--only/)
  assert.throws(() => parseOptions(['--load-generator', 'ab'], {}), /--load-generator/)
  assert.throws(() => parseOptions(['--stunnel-debug', '8'], {}), /--stunnel-debug/)
  assert.throws(() => parseOptions(['--nope'], {}), UsageError)
})
