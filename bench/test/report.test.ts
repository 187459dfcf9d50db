import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Machine } from '../machine.js'
import { type Row, ratioOf } from '../measure.js'
import { markdown, table } from '../report.js'

test('the ratio is the median of the per-round ratios, not the ratio of medians', () => {
  // Rounds: 10/10 = 1, 30/10 = 3, 20/40 = 0.5 -> median 1 (the ratio of medians would be 2).
  assert.equal(ratioOf([10, 30, 20], [10, 10, 40], undefined), 1)
  assert.equal(ratioOf([10], [5], 'stunnel did not start'), null)
  assert.equal(ratioOf([], [], undefined), null)
})

const side = (name: string, value: number | null, extra: object = {}) => ({
  name,
  role: 'ours',
  value,
  p50Ms: 1,
  p99Ms: 2,
  samples: value === null ? [] : [value],
  ...extra,
})

const rows: Row[] = [
  { id: 1, title: 'static 1 KiB', unit: 'req/s', left: side('static-server', 900), right: side('nginx', 1000), ratio: 0.9, notes: ['from flags'] },
  { id: 4, title: 'pass', unit: 'req/s', left: side('caching-router', 800), right: side('varnishd', 1000), ratio: 0.8, notes: ['from flags'] },
  {
    id: 5,
    title: 'TLS',
    unit: 'req/s',
    left: side('tls-terminator', 100),
    right: side('stunnel', null, { problem: 'stunnel is not installed: apt-get install stunnel4', absent: true }),
    ratio: null,
    notes: [],
  },
]

test('the table judges each ratio against its target and numbers each distinct note once', () => {
  const { table: t, notes } = table(rows, { smoke: false })
  assert.match(t, /\| 1 \| static 1 KiB \| static-server: 900 req\/s \| nginx: 1,000 req\/s \| 0\.90x \| >= 0\.8 met \|/)
  assert.match(t, /\| 4 \| pass .* \| 0\.80x \| >= 0\.9 not met \|/)
  assert.match(t, /stunnel: n\/a \| - \| >= 1\.2 \|/)
  assert.deepEqual(notes, ['from flags', 'skipped: stunnel is not installed: apt-get install stunnel4'])
})

test('a quick run is a smoke run: targets stated, no verdict', () => {
  const { table: t } = table(rows, { smoke: true })
  assert.doesNotMatch(t, /\bmet\b/)
  assert.match(t, /\| 0\.90x \| >= 0\.8 \(smoke run: no verdict\) \|/)
})

test('RESULTS.md says when it comes from a quick run, and names the machine', () => {
  const machine: Machine = {
    cores: 2,
    cpuModel: 'cpu',
    memoryGiB: 4,
    kernel: 'Linux 6',
    node: 'v20.20.2',
    versions: { nginx: '1.22.1' },
    loadGenerator: 'wrk 4.1.0',
    serverCpus: '0',
    loadCpus: '1',
  }
  const options = {
    quick: true,
    connections: 32,
    durationS: 1,
    warmupS: 0,
    rounds: 1,
    idle: 500,
    only: [],
    without: [],
    loadGenerator: 'auto' as const,
    oursFrom: 'auto' as const,
    stunnelDebug: 5,
  }
  const md = markdown({ startedAt: 'now', elapsedS: 50, quick: true, options, machine, rows })
  assert.match(md, /SMOKE RUN/)
  assert.doesNotMatch(md, /\bnot met\b|\bmet\b/)
  assert.match(md, /2 cores \(cpu\)/)
  assert.match(md, /nginx 1\.22\.1; load generator wrk 4\.1\.0/)
  assert.doesNotMatch(markdown({ startedAt: 'now', elapsedS: 900, quick: false, options, machine, rows }), /SMOKE RUN/)
})
