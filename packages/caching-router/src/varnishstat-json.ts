/**
 * `varnishstat -j` (varnish 7.1): version 1, a local-time timestamp, and each counter with its
 * description, flag (`c` counter, `g` gauge) and format (`i` integer, `B` bytes, `d` duration),
 * in the layout varnishstat prints (two-space indents). Built from the `stats` admin answer
 * (`varnishstat -1` lines), which is all `caching-router stat` can read from a running router.
 */
const KINDS: Record<string, { flag: 'c' | 'g'; format: 'i' | 'B' | 'd' }> = {
  'MAIN.uptime': { flag: 'c', format: 'd' },
  'MAIN.n_object': { flag: 'g', format: 'i' },
  'MAIN.bans': { flag: 'g', format: 'i' },
  'MAIN.s_resp_bodybytes': { flag: 'c', format: 'B' },
  'SMA.s0.g_bytes': { flag: 'g', format: 'B' },
  'SMA.s0.g_space': { flag: 'g', format: 'B' },
}

// The storage gauges travel in the `stats` answer as MAIN.SMA_g_*; varnishstat names them SMA.s0.*.
const RENAMED: Record<string, [string, string]> = {
  'MAIN.SMA_g_bytes': ['SMA.s0.g_bytes', 'Bytes outstanding'],
  'MAIN.SMA_g_space': ['SMA.s0.g_space', 'Bytes available'],
}

export function varnishstatJson(statsText: string, now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0')
  const stamp = `${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())}T${p(now.getHours())}:${p(now.getMinutes())}:${p(now.getSeconds())}`
  const entries: string[] = []
  for (const line of statsText.split('\n')) {
    const m = /^(\S+)\s+(\d+)\s+\S+\s+(.*)$/.exec(line)
    if (!m) continue
    const [name, description] = RENAMED[m[1] as string] ?? [m[1] as string, m[3] as string]
    const kind = KINDS[name] ?? { flag: 'c', format: 'i' }
    entries.push(
      `    ${JSON.stringify(name)}: {\n      "description": ${JSON.stringify(description)},\n      "flag": "${kind.flag}",\n      "format": "${kind.format}",\n      "value": ${m[2]}\n    }`,
    )
  }
  return `{\n  "version": 1,\n  "timestamp": "${stamp}",\n  "counters": {\n${entries.join(',\n')}\n  }\n}\n`
}
