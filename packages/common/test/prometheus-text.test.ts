import assert from 'node:assert/strict'
import { test } from 'node:test'
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
