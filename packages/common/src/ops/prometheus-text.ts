/**
 * Prometheus' text exposition format, version 0.0.4
 * (prometheus.io/docs/instrumenting/exposition_formats): `# HELP`, `# TYPE`, then one
 * `name{label="value"} number` line a sample. Families are plain data so that a manager can
 * receive them from its children over the IPC channel and add them up (child-metrics.ts).
 */
export interface MetricSample {
  /** A histogram's series: `_bucket` (with an `le` label), `_sum`, `_count`. */
  suffix?: '_bucket' | '_sum' | '_count'
  labels?: Readonly<Record<string, string>>
  value: number
}

export interface MetricFamily {
  name: string
  help: string
  type: 'counter' | 'gauge' | 'histogram'
  samples: MetricSample[]
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** A family of one unlabelled sample. */
export function single(name: string, type: MetricFamily['type'], help: string, value: number): MetricFamily {
  return { name, type, help, samples: [{ value }] }
}

// The format's escapes: in HELP, backslash and newline; in label values, also the double quote.
const escapeHelp = (s: string) => s.replaceAll('\\', '\\\\').replaceAll('\n', '\\n')
const escapeLabel = (s: string) => escapeHelp(s).replaceAll('"', '\\"')

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Number.POSITIVE_INFINITY) return '+Inf'
  if (v === Number.NEGATIVE_INFINITY) return '-Inf'
  return String(v)
}

function labelText(labels: MetricSample['labels']): string {
  if (!labels) return ''
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`)
  return parts.length === 0 ? '' : `{${parts.join(',')}}`
}

export function renderMetrics(families: readonly MetricFamily[]): string {
  let out = ''
  for (const f of families) {
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`
    for (const s of f.samples) out += `${f.name}${s.suffix ?? ''}${labelText(s.labels)} ${formatValue(s.value)}\n`
  }
  return out
}

const sampleKey = (s: MetricSample) => `${s.suffix ?? ''}${s.labels ? JSON.stringify(Object.entries(s.labels).sort()) : ''}`

/**
 * Adds up what several processes report (nginx's workers share their stub_status counters in
 * shared memory; ours each keep their own): samples with the same name and labels are summed,
 * families kept in the order they first appear.
 */
export function sumFamilies(reports: readonly (readonly MetricFamily[])[]): MetricFamily[] {
  const byName = new Map<string, { family: MetricFamily; byKey: Map<string, MetricSample> }>()
  for (const report of reports) {
    for (const f of report) {
      let entry = byName.get(f.name)
      if (!entry) {
        entry = { family: { name: f.name, help: f.help, type: f.type, samples: [] }, byKey: new Map() }
        byName.set(f.name, entry)
      }
      for (const s of f.samples) {
        const key = sampleKey(s)
        const seen = entry.byKey.get(key)
        if (seen) seen.value += s.value
        else {
          const copy: MetricSample = { ...(s.suffix ? { suffix: s.suffix } : {}), ...(s.labels ? { labels: s.labels } : {}), value: s.value }
          entry.byKey.set(key, copy)
          entry.family.samples.push(copy)
        }
      }
    }
  }
  return [...byName.values()].map((e) => e.family)
}
