import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Histogram, HistogramByLabel, LATENCY_BUCKETS } from '../src/ops/histogram.js'
import { renderMetrics, sumFamilies } from '../src/ops/prometheus-text.js'

test('text format 0.0.4: HELP and TYPE once a family, label values and HELP escaped', () => {
  const text = renderMetrics([
    { name: 'a_total', type: 'counter', help: 'one\\two\nthree', samples: [{ value: 3 }] },
    { name: 'b', type: 'gauge', help: 'b', samples: [{ labels: { reason: 'say "hi"\\\n' }, value: 1.5 }, { labels: { reason: 'x' }, value: Number.NaN }] },
    { name: 'c', type: 'gauge', help: 'empty', samples: [] },
  ])
  assert.equal(
    text,
    '# HELP a_total one\\\\two\\nthree\n# TYPE a_total counter\na_total 3\n' +
      '# HELP b b\n# TYPE b gauge\nb{reason="say \\"hi\\"\\\\\\n"} 1.5\nb{reason="x"} NaN\n' +
      '# HELP c empty\n# TYPE c gauge\n',
  )
})

test('sumFamilies adds samples of the same name and labels, whatever the label order', () => {
  const one = [{ name: 'h', type: 'counter' as const, help: 'h', samples: [{ labels: { v: '1', c: 'x' }, value: 2 }] }]
  const two = [
    { name: 'h', type: 'counter' as const, help: 'h', samples: [{ labels: { c: 'x', v: '1' }, value: 3 }, { labels: { c: 'y', v: '1' }, value: 1 }] },
    { name: 'g', type: 'gauge' as const, help: 'g', samples: [{ value: 4 }] },
  ]
  assert.deepEqual(sumFamilies([one, two]), [
    { name: 'h', type: 'counter', help: 'h', samples: [{ labels: { v: '1', c: 'x' }, value: 5 }, { labels: { c: 'y', v: '1' }, value: 1 }] },
    { name: 'g', type: 'gauge', help: 'g', samples: [{ value: 4 }] },
  ])
  // The reports are not changed.
  assert.equal(one[0]?.samples[0]?.value, 2)
})

test('a histogram: cumulative _bucket{le} up to +Inf, _sum, _count; an observation on a bound counts in it', () => {
  const h = new Histogram([0.1, 1])
  for (const s of [0.05, 0.1, 0.5, 3]) h.observe(s)
  assert.equal(
    renderMetrics([h.family('d_seconds', 'd')]),
    '# HELP d_seconds d\n# TYPE d_seconds histogram\n' +
      'd_seconds_bucket{le="0.1"} 2\nd_seconds_bucket{le="1"} 3\nd_seconds_bucket{le="+Inf"} 4\nd_seconds_sum 3.65\nd_seconds_count 4\n',
  )
})

test("histograms of several processes add up bucket by bucket; by label, the label comes before le", () => {
  const a = new HistogramByLabel('handling')
  const b = new HistogramByLabel('handling')
  a.observe('hit', 0.0005)
  b.observe('hit', 0.2)
  b.observe('miss', 20)
  const text = renderMetrics(sumFamilies([[a.family('r', 'r')], [b.family('r', 'r')]]))
  assert.match(text, /^r_bucket\{handling="hit",le="0.001"\} 1$/m)
  assert.match(text, /^r_bucket\{handling="hit",le="0.25"\} 2$/m)
  assert.match(text, /^r_count\{handling="hit"\} 2$/m)
  assert.match(text, /^r_bucket\{handling="miss",le="10"\} 0$/m)
  assert.match(text, /^r_bucket\{handling="miss",le="\+Inf"\} 1$/m)
  assert.equal(LATENCY_BUCKETS.length, 13)
})
