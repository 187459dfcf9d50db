import type { Context } from './directives.js'
import { NginxConfError } from './errors.js'
import type { Directive } from './parse-tree.js'

/**
 * What static-server does with each directive it accepts, so nothing is accepted and silently
 * ignored (test/directive-support.test.ts walks DIRECTIVES against this table):
 * - `implemented`: it has nginx's effect (and a behavioural test names it);
 * - `no-op`: nginx's effect is nothing a client or operator of ours can observe (tuning of
 *   buffers, hashes, the event loop, threads...), listed in the README;
 * - a `refuse` check: the values static-server does not implement are refused at load in
 *   one line, the rest are implemented or no-ops.
 */
export type Support =
  | { kind: 'implemented' }
  | { kind: 'no-op' }
  | { kind: 'partial'; refuse: (args: readonly string[]) => string | undefined }
  | { kind: 'refused'; why: string }

const IMPLEMENTED: Support = { kind: 'implemented' }
const NO_OP: Support = { kind: 'no-op' }
const unless = (ok: (args: readonly string[]) => boolean, why: string): Support => ({
  kind: 'partial',
  refuse: (args) => (ok(args) ? undefined : why),
})
const refused = (why: string): Support => ({ kind: 'refused', why })

export const SUPPORT: ReadonlyMap<string, Support> = new Map<string, Support>([
  ...[
    'include',
    'worker_processes',
    'pid',
    'events',
    'worker_connections',
    'http',
    'server',
    'upstream',
    'keepalive_requests',
    'keepalive_time',
    'location',
    'types',
    'listen',
    'server_name',
    'root',
    'alias',
    'index',
    'try_files',
    'return',
    'rewrite',
    'set',
    'break',
    'if',
    'map',
    'error_page',
    'add_header',
    'expires',
    'default_type',
    'autoindex',
    'autoindex_format',
    'autoindex_exact_size',
    'autoindex_localtime',
    'stub_status',
    'etag',
    'if_modified_since',
    'keepalive_timeout',
    'client_max_body_size',
    'client_header_timeout',
    'client_body_timeout',
    'send_timeout',
    'large_client_header_buffers',
    'access_log',
    'log_format',
    'server_tokens',
    'keepalive_disable',
    'absolute_redirect',
    'port_in_redirect',
    'server_name_in_redirect',
    'gzip_static',
    'limit_req_zone',
    'limit_req',
    'limit_req_status',
    'limit_req_log_level',
    'limit_req_dry_run',
    'limit_conn_zone',
    'limit_conn',
    'limit_conn_status',
    'limit_conn_log_level',
    'limit_conn_dry_run',
    'gzip',
    'gzip_types',
    'gzip_comp_level',
    'gzip_min_length',
    'gzip_vary',
    'gzip_proxied',
    'gzip_disable',
    'gzip_http_version',
    'gzip_window',
    'gzip_hash',
    'open_file_cache',
    'open_file_cache_valid',
    'disable_symlinks',
    'merge_slashes',
    'set_real_ip_from',
    'real_ip_header',
    'real_ip_recursive',
    'charset',
    'internal',
    'allow',
    'deny',
    'satisfy',
    'auth_basic',
    'auth_basic_user_file',
    'msie_padding',
    // proxy_pass and its directives: proxy.ts, upstream.ts.
    'proxy_pass',
    'proxy_set_header',
    'proxy_http_version',
    'proxy_connect_timeout',
    'proxy_read_timeout',
    'proxy_next_upstream',
    'keepalive',
    'proxy_send_timeout',
    'proxy_next_upstream_tries',
    'proxy_next_upstream_timeout',
    'proxy_redirect',
    'proxy_intercept_errors',
    'proxy_hide_header',
    'proxy_pass_header',
    'proxy_ignore_headers',
    'proxy_pass_request_headers',
    'proxy_pass_request_body',
    'proxy_method',
    'proxy_set_body',
    'proxy_buffer_size',
    // The balancing methods: upstream-balance.ts and the files it names.
    'least_conn',
    'ip_hash',
    'hash',
    'random',
    'recursive_error_pages',
    // limit-rate.ts, common's paced-writer.ts.
    'limit_rate',
    'limit_rate_after',
    // charset-filter.ts, charset-recode.ts, config/charset-maps.ts.
    'charset_map',
    'source_charset',
    'override_charset',
    'charset_types',
    // respond.ts sets the trailer; common's Http1Response chunks and writes it.
    'add_trailer',
    // The SSI filter: src/ssi-*.ts.
    'ssi',
    'ssi_types',
    'ssi_silent_errors',
    'ssi_last_modified',
    'ssi_value_length',
  ].map((n) => [n, IMPLEMENTED] as [string, Support]),
  ...[
    // Process, event-loop and thread tuning: nothing a client sees.
    'master_process',
    'worker_cpu_affinity',
    'worker_priority',
    'pcre_jit',
    'env',
    'thread_pool',
    'use',
    'multi_accept',
    'accept_mutex',
    'accept_mutex_delay',
    // Hash table sizing (nginx may refuse a table too small to build; we never need one).
    'map_hash_max_size',
    'map_hash_bucket_size',
    'types_hash_max_size',
    'types_hash_bucket_size',
    'server_names_hash_bucket_size',
    'server_names_hash_max_size',
    'variables_hash_max_size',
    'variables_hash_bucket_size',
    // I/O and buffer tuning.
    'client_header_buffer_size',
    'client_body_buffer_size',
    'sendfile',
    'sendfile_max_chunk',
    'tcp_nopush',
    'tcp_nodelay',
    'aio',
    'directio',
    'output_buffers',
    'open_file_cache_min_uses',
    'proxy_buffers',
    // Answers are streamed with backpressure either way: the bytes a client gets are the same.
    'proxy_buffering',
    'client_body_temp_path',
    'proxy_temp_path',
    'fastcgi_temp_path',
    'uwsgi_temp_path',
    'scgi_temp_path',
    'lingering_close',
    'lingering_time',
    'lingering_timeout',
    // The gzip filter's output buffer sizes: where chunks break, never the bytes they carry.
    'gzip_buffers',
    // Only read by what static-server refuses (variables in proxy_pass, ssl, a cache).
    'resolver',
    'resolver_timeout',
    'ssl_protocols',
    'ssl_prefer_server_ciphers',
    // Memory pool sizes of a connection and a request (checked as nginx checks them).
    'connection_pool_size',
    'request_pool_size',
    // Whether an unchanged stretch of a file goes out by sendfile or from memory: how the
    // bytes travel, never which.
    'ssi_min_file_chunk',
    // Error-log notices only.
    'rewrite_log',
    'uninitialized_variable_warn',
    'log_not_found',
  ].map((n) => [n, NO_OP] as [string, Support]),
  ['daemon', unless((a) => a[0] === 'off', '"daemon on" is not supported by static-server: it runs in the foreground')],
  ['error_log', IMPLEMENTED],
  ['user', refused('static-server does not change its user: start it as the user it should run as')],
  ['worker_rlimit_nofile', refused('static-server cannot change its descriptor limit: set it with ulimit -n')],
  ['worker_shutdown_timeout', refused('static-server drains for 10 s on a graceful stop; a different timeout is not supported')],
  ['load_module', refused('static-server cannot load nginx modules')],
  // nginx's default `on`: a name with an underscore is left out as nginx leaves it; a name that
  // is not a token is a 400 here rather than skipped (DIFFERENCES.md, the request table).
  ['ignore_invalid_headers', unless((a) => a[0] === 'on', '"ignore_invalid_headers off" is not supported by static-server')],
  // `on` keeps a backend's buffers from being reused while SSI holds them: nginx 1.22 then
  // stalls a proxied body of many small reads (test/differential-ssi.test.ts measures it).
  [
    'ssi_ignore_recycled_buffers',
    unless((a) => a[0] === 'off', '"ssi_ignore_recycled_buffers on" is not supported by static-server: nginx stalls streamed backend bodies with it'),
  ],
  // ngx_http_upstream_zone_module shares peer state between workers (and keeps it for the API).
  ['zone', refused('"zone" is not supported by static-server: each worker keeps its own upstream peer state')],
  ['open_file_cache_errors', unless((a) => a[0] === 'off', '"open_file_cache_errors on" is not supported by static-server')],
  ['chunked_transfer_encoding', unless((a) => a[0] === 'on', '"chunked_transfer_encoding off" is not supported by static-server')],
  ['reset_timedout_connection', unless((a) => a[0] === 'off', '"reset_timedout_connection on" is not supported by static-server')],
  // proxy_cache on common's ObjectStore (proxy-cache.ts), kept in memory: README.
  ...[
    'proxy_cache',
    'proxy_cache_path',
    'proxy_cache_valid',
    'proxy_cache_key',
    'proxy_cache_bypass',
    'proxy_no_cache',
    'proxy_cache_use_stale',
    'proxy_cache_lock',
    'proxy_cache_lock_timeout',
    'proxy_cache_lock_age',
    'proxy_cache_methods',
    'proxy_cache_min_uses',
    'proxy_cache_revalidate',
    'proxy_cache_convert_head',
    'proxy_cache_background_update',
  ].map((n) => [n, IMPLEMENTED] as [string, Support]),
])

/** Refuses, in one line at the directive's place, a directive or value static-server does not implement. */
export function checkSupported(d: Directive, ctx: Context): void {
  // One error log for the whole server: nginx's per-server and per-location logs are not kept.
  if (d.name === 'error_log' && ctx !== 'main') {
    throw new NginxConfError('"error_log" is supported by static-server in the main context only', d.file, d.line, d.name)
  }
  const s = SUPPORT.get(d.name)
  const why = s?.kind === 'refused' ? s.why : s?.kind === 'partial' ? s.refuse(d.args) : undefined
  if (why !== undefined) throw new NginxConfError(why, d.file, d.line, d.name)
}
