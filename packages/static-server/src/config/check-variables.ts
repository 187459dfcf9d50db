import { NginxConfError } from './errors.js'
import { BUILTIN } from './variable-names.js'

/**
 * Families nginx resolves by prefix (ngx_http_variables_init_vars), not by name; `ssl_` stands
 * for the ssl module's variables, which exist in nginx's build whether or not a server uses TLS.
 */
const PREFIXES = ['http_', 'sent_http_', 'sent_trailer_', 'cookie_', 'arg_', 'upstream_http_', 'upstream_trailer_', 'upstream_cookie_', 'ssl_']
/**
 * The rest of what Debian's nginx 1.22 knows by name (core, stub_status, userid, ssi, referer,
 * secure_link, slice, limit_conn/limit_req, fastcgi, upstream cache), the changeable built-ins
 * absent from BUILTIN, and our $connection_upgrade. Found by `nginx -t` on each.
 */
const ALSO_KNOWN = new Set([
  'args',
  'limit_rate',
  'connection_upgrade',
  'request_length',
  'connection_time',
  'tcpinfo_rtt',
  'tcpinfo_rttvar',
  'tcpinfo_snd_cwnd',
  'tcpinfo_rcv_space',
  'http2',
  'date_local',
  'date_gmt',
  'uid_got',
  'uid_set',
  'uid_reset',
  'connections_active',
  'connections_reading',
  'connections_writing',
  'connections_waiting',
  'secure_link',
  'secure_link_expires',
  'invalid_referer',
  'fastcgi_script_name',
  'fastcgi_path_info',
  'slice_range',
  'upstream_cache_last_modified',
  'upstream_cache_etag',
  'limit_conn_status',
  'limit_req_status',
])

/**
 * nginx refuses a configuration that reads a variable nobody defines: `unknown "x" variable`,
 * without a line (it is found once the whole file is read). Every template in the model is a
 * frozen list of strings and `{ v: name }` parts; those are walked here.
 */
export function checkVariables(model: object, extra: Iterable<object>, defined: ReadonlySet<string>, file: string): void {
  const seen = new Set<object>()
  const visit = (o: unknown): void => {
    if (o === null || typeof o !== 'object' || o instanceof RegExp || seen.has(o)) return
    seen.add(o)
    if (o instanceof Map) {
      for (const v of o.values()) visit(v)
      return
    }
    if (o instanceof Set) return
    const v = (o as { v?: unknown }).v
    if (typeof v === 'string' && Object.keys(o).length === 1) {
      if (!known(v, defined)) throw new NginxConfError(`unknown "${v}" variable`, file, 0)
      return
    }
    for (const x of Object.values(o)) visit(x)
  }
  visit(model)
  for (const x of extra) visit(x)
}

function known(name: string, defined: ReadonlySet<string>): boolean {
  if (/^\d$/.test(name) || defined.has(name) || BUILTIN.has(name) || ALSO_KNOWN.has(name)) return true
  return PREFIXES.some((p) => name.startsWith(p) && name.length > p.length)
}
