/**
 * Counters named as varnishstat names them (MAIN.*), so dashboards and scripts written for
 * `varnishstat -1` read ours. Plain numeric fields: incrementing one costs nothing.
 */
export class Counters {
  uptime_start = Date.now()
  sess_conn = 0
  s_sess = 0
  client_req = 0
  s_req = 0
  s_pass = 0
  s_pipe = 0
  s_fetch = 0
  s_synth = 0
  cache_hit = 0
  cache_hit_grace = 0
  cache_miss = 0
  cache_hitmiss = 0
  cache_hitpass = 0
  busy_sleep = 0
  busy_wakeup = 0
  backend_req = 0
  backend_fail = 0
  fetch_failed = 0
  bgfetch = 0
  n_object = 0
  n_expired = 0
  n_lru_nuked = 0
  n_purges = 0
  n_obj_purged = 0
  bans = 0
  bans_added = 0
  bans_dups = 0
  bans_obj_killed = 0
  s_resp_bodybytes = 0
  client_req_400 = 0
  client_req_417 = 0
  /** ESI: includes made (ved_include), and VEP's parse errors and warnings (esi/esi-parse.ts). */
  esi_req = 0
  esi_errors = 0
  esi_warnings = 0
}

const DESCRIPTIONS: Record<string, string> = {
  uptime: 'Child process uptime',
  sess_conn: 'Sessions accepted',
  s_sess: 'Total sessions seen',
  client_req: 'Good client requests received',
  s_req: 'Total requests seen',
  s_pass: 'Total pass-ed requests seen',
  s_pipe: 'Total pipe sessions seen',
  s_fetch: 'Total backend fetches initiated',
  s_synth: 'Total synthetic responses made',
  cache_hit: 'Cache hits',
  cache_hit_grace: 'Cache grace hits',
  cache_miss: 'Cache misses',
  cache_hitmiss: 'Cache hits for miss.',
  cache_hitpass: 'Cache hits for pass.',
  busy_sleep: 'Number of requests sent to sleep on busy objhdr',
  busy_wakeup: 'Number of requests woken after sleep on busy objhdr',
  backend_req: 'Backend requests made',
  backend_fail: 'Backend conn. failures',
  fetch_failed: 'Fetch failed (all causes)',
  bgfetch: 'Background fetch',
  n_object: 'object structs made',
  n_expired: 'Number of expired objects',
  n_lru_nuked: 'Number of LRU nuked objects',
  n_purges: 'Number of purge operations executed',
  n_obj_purged: 'Number of purged objects',
  bans: 'Count of bans',
  bans_added: 'Bans added',
  bans_dups: 'Bans superseded by other bans',
  bans_obj_killed: 'Objects killed by bans (lookup)',
  s_resp_bodybytes: 'Response body bytes',
  client_req_400: 'Client requests received, subject to 400 errors',
  client_req_417: 'Client requests received, subject to 417 errors',
  esi_req: 'ESI subrequests',
  esi_errors: 'ESI parse errors (unlock)',
  esi_warnings: 'ESI parse warnings (unlock)',
}

/** varnishstat's description of a MAIN counter. */
export function counterDescription(name: string): string {
  return DESCRIPTIONS[name] ?? name
}

/** `varnishstat -1`: `MAIN.name   value   rate   description`, one counter a line. */
export function formatCounters(c: Counters, extra: Record<string, number> = {}): string {
  const uptime = Math.max(1, Math.floor((Date.now() - c.uptime_start) / 1000))
  const rows: Array<[string, number]> = [['uptime', uptime]]
  for (const [k, v] of Object.entries(c)) if (k !== 'uptime_start') rows.push([k, v as number])
  for (const [k, v] of Object.entries(extra)) rows.push([k, v])
  let out = ''
  for (const [k, v] of rows) {
    const rate = k === 'uptime' ? '1.00' : (v / uptime).toFixed(2)
    out += `${`MAIN.${k}`.padEnd(40)} ${String(v).padStart(14)} ${rate.padStart(14)} ${DESCRIPTIONS[k] ?? k}\n`
  }
  return out
}

/** `--workers N`: every worker's counters added up, with `base`'s start time (the first worker's). */
export function sumCounters(base: Counters, all: readonly Record<string, number>[]): Counters {
  const sum = new Counters()
  sum.uptime_start = base.uptime_start
  const fields = sum as unknown as Record<string, number>
  for (const c of all) for (const k of Object.keys(fields)) if (k !== 'uptime_start') fields[k] = (fields[k] as number) + (c[k] ?? 0)
  return sum
}

/** Figures (storage bytes) added up across workers. */
export function sumFigures(all: readonly Record<string, number>[]): Record<string, number> {
  const sum: Record<string, number> = {}
  for (const f of all) for (const [k, v] of Object.entries(f)) sum[k] = (sum[k] ?? 0) + v
  return sum
}
