import type { MetricFamily } from '@edgestack/common'
import { type Counters, counterDescription } from './counters.js'

/**
 * prometheus_varnish_exporter's names for varnishstat's counters (its prometheus.go,
 * fullPrometheusMetricName): `MAIN.x` is `varnish_main_x`, except that `MAIN.backend_*` and
 * `MAIN.s_fetch` fall in its "backend" group (`varnish_backend_req`, `varnish_backend_fail`,
 * and `MAIN.s_fetch` trimmed to nothing: `varnish_backend_`), and `MAIN.fetch_*` are one
 * family `varnish_main_fetch{code="..."}`. The exporter publishes every one as a gauge; so do
 * we, so that recording rules written against it keep their types.
 */
export function varnishMetricName(counter: string): { name: string; labels?: Record<string, string> } {
  if (counter.startsWith('backend_')) return { name: `varnish_backend_${counter.slice('backend_'.length)}` }
  if (counter === 's_fetch') return { name: 'varnish_backend_' }
  if (counter.startsWith('fetch_')) return { name: 'varnish_main_fetch', labels: { code: counter.slice('fetch_'.length) } }
  return { name: `varnish_main_${counter}` }
}

/** Every counter the child keeps, plus the storage's SMA.s0 gauges, as the exporter names them. */
export function varnishFamilies(c: Counters, storage: { bytes: number; maxBytes: number }, now = Date.now()): MetricFamily[] {
  const rows: Array<[string, number]> = [['uptime', Math.floor((now - c.uptime_start) / 1000)]]
  for (const [k, v] of Object.entries(c)) if (k !== 'uptime_start') rows.push([k, v as number])
  const byName = new Map<string, MetricFamily>()
  for (const [counter, value] of rows) {
    const { name, labels } = varnishMetricName(counter)
    let family = byName.get(name)
    if (!family) {
      // The exporter gives the MAIN.fetch_* family one description for all its codes.
      const help = name === 'varnish_main_fetch' ? 'Number of backend fetches' : counterDescription(counter)
      family = { name, help, type: 'gauge', samples: [] }
      byName.set(name, family)
    }
    family.samples.push({ ...(labels ? { labels } : {}), value })
  }
  // SMA.s0.g_bytes: the identifier leaves the name and becomes the `ident` label.
  byName.set('varnish_sma_g_bytes', {
    name: 'varnish_sma_g_bytes',
    help: 'Bytes outstanding',
    type: 'gauge',
    samples: [{ labels: { ident: 's0' }, value: storage.bytes }],
  })
  byName.set('varnish_sma_g_space', {
    name: 'varnish_sma_g_space',
    help: 'Bytes available',
    type: 'gauge',
    samples: [{ labels: { ident: 's0' }, value: storage.maxBytes - storage.bytes }],
  })
  return [...byName.values()]
}
