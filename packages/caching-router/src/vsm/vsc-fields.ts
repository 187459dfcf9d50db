/**
 * The counters the router writes to shared memory, described as varnish 7.1.1's VSC files
 * describe them (bin/varnishd/VSC_main.vsc, VSC_sma.vsc, VSC_vbe.vsc, turned into JSON by
 * lib/libvcc/vsctool.py): type, format, level and one-line description, taken from the
 * StatDoc segments varnishd 7.1.1 writes. Only counters the router keeps are listed, so a
 * reader never shows a counter that stays 0 because nothing counts it. Order is the
 * segment's: field i is the 64-bit word at offset 8*i of the body.
 */

export interface VscField {
  readonly name: string
  readonly type: 'counter' | 'gauge'
  readonly format: 'integer' | 'bytes' | 'duration'
  readonly level: 'info' | 'diag' | 'debug'
  readonly oneliner: string
}

/** One VSC type: its StatDoc's `name`, `oneliner` and `order` (varnishstat sorts by it). */
export interface VscDoc {
  readonly name: string
  readonly oneliner: string
  readonly order: number
  readonly fields: readonly VscField[]
}

export const MAIN_DOC: VscDoc = {
  name: 'main',
  oneliner: 'Main counters',
  order: 10,
  fields: [
    { name: 'uptime', type: 'counter', format: 'duration', level: 'info', oneliner: 'Child process uptime' },
    { name: 'sess_conn', type: 'counter', format: 'integer', level: 'info', oneliner: 'Sessions accepted' },
    { name: 's_sess', type: 'counter', format: 'integer', level: 'info', oneliner: 'Total sessions seen' },
    { name: 'client_req', type: 'counter', format: 'integer', level: 'info', oneliner: 'Good client requests received' },
    { name: 'client_req_400', type: 'counter', format: 'integer', level: 'info', oneliner: 'Client requests received, subject to 400 errors' },
    { name: 'client_req_417', type: 'counter', format: 'integer', level: 'info', oneliner: 'Client requests received, subject to 417 errors' },
    { name: 's_pass', type: 'counter', format: 'integer', level: 'info', oneliner: 'Total pass-ed requests seen' },
    { name: 's_pipe', type: 'counter', format: 'integer', level: 'info', oneliner: 'Total pipe sessions seen' },
    { name: 's_fetch', type: 'counter', format: 'integer', level: 'info', oneliner: 'Total backend fetches initiated' },
    { name: 's_synth', type: 'counter', format: 'integer', level: 'info', oneliner: 'Total synthetic responses made' },
    { name: 'cache_hit', type: 'counter', format: 'integer', level: 'info', oneliner: 'Cache hits' },
    { name: 'cache_hit_grace', type: 'counter', format: 'integer', level: 'info', oneliner: 'Cache grace hits' },
    { name: 'cache_miss', type: 'counter', format: 'integer', level: 'info', oneliner: 'Cache misses' },
    { name: 'cache_hitmiss', type: 'counter', format: 'integer', level: 'info', oneliner: 'Cache hits for miss.' },
    { name: 'cache_hitpass', type: 'counter', format: 'integer', level: 'info', oneliner: 'Cache hits for pass.' },
    { name: 'busy_sleep', type: 'counter', format: 'integer', level: 'info', oneliner: 'Number of requests sent to sleep on busy objhdr' },
    { name: 'busy_wakeup', type: 'counter', format: 'integer', level: 'info', oneliner: 'Number of requests woken after sleep on busy objhdr' },
    { name: 'backend_req', type: 'counter', format: 'integer', level: 'info', oneliner: 'Backend requests made' },
    { name: 'backend_fail', type: 'counter', format: 'integer', level: 'info', oneliner: 'Backend conn. failures' },
    { name: 'fetch_failed', type: 'counter', format: 'integer', level: 'info', oneliner: 'Fetch failed (all causes)' },
    { name: 'n_object', type: 'gauge', format: 'integer', level: 'info', oneliner: 'object structs made' },
    { name: 'n_expired', type: 'counter', format: 'integer', level: 'info', oneliner: 'Number of expired objects' },
    { name: 'n_lru_nuked', type: 'counter', format: 'integer', level: 'info', oneliner: 'Number of LRU nuked objects' },
    { name: 'n_purges', type: 'counter', format: 'integer', level: 'info', oneliner: 'Number of purge operations executed' },
    { name: 'n_obj_purged', type: 'counter', format: 'integer', level: 'info', oneliner: 'Number of purged objects' },
    { name: 'bans', type: 'gauge', format: 'integer', level: 'info', oneliner: 'Count of bans' },
    { name: 'bans_added', type: 'counter', format: 'integer', level: 'diag', oneliner: 'Bans added' },
    { name: 'bans_dups', type: 'counter', format: 'integer', level: 'diag', oneliner: 'Bans superseded by other bans' },
    { name: 'bans_obj_killed', type: 'counter', format: 'integer', level: 'diag', oneliner: 'Objects killed by bans (lookup)' },
    { name: 's_resp_bodybytes', type: 'counter', format: 'bytes', level: 'info', oneliner: 'Response body bytes' },
    { name: 'esi_req', type: 'counter', format: 'integer', level: 'info', oneliner: 'ESI subrequests' },
    { name: 'esi_errors', type: 'counter', format: 'integer', level: 'diag', oneliner: 'ESI parse errors (unlock)' },
    { name: 'esi_warnings', type: 'counter', format: 'integer', level: 'diag', oneliner: 'ESI parse warnings (unlock)' },
  ],
}

export const SMA_DOC: VscDoc = {
  name: 'sma',
  oneliner: 'Malloc Stevedore Counters',
  order: 40,
  fields: [
    { name: 'g_bytes', type: 'gauge', format: 'bytes', level: 'info', oneliner: 'Bytes outstanding' },
    { name: 'g_space', type: 'gauge', format: 'bytes', level: 'info', oneliner: 'Bytes available' },
  ],
}

export const VBE_DOC: VscDoc = {
  name: 'vbe',
  oneliner: 'Backend Counters',
  order: 60,
  fields: [
    { name: 'req', type: 'counter', format: 'integer', level: 'info', oneliner: 'Backend requests sent' },
    { name: 'fail', type: 'counter', format: 'integer', level: 'info', oneliner: 'Connections failed' },
  ],
}
