import type { Context } from './directives.js'
import { NginxConfError } from './errors.js'
import type { Directive } from './parse-tree.js'
import { flag, size, time } from './directive-values.js'

/**
 * Directives nginx lets a block set more than once: lists, blocks that may repeat, and the
 * few whose handlers never check (found by running `nginx -t` on each directive twice). Every
 * other one is read by a slot that answers `"x" directive is duplicate`.
 */
const REPEATABLE = new Set([
  'include',
  'error_log',
  'env',
  'load_module',
  'worker_priority',
  'thread_pool',
  'server',
  'upstream',
  'location',
  'types',
  'if',
  'map',
  'least_conn',
  'ip_hash',
  'hash',
  'random',
  'listen',
  'server_name',
  'index',
  'return',
  'rewrite',
  'set',
  'break',
  'error_page',
  'add_header',
  'add_trailer',
  'charset_map',
  'access_log',
  'log_format',
  'proxy_set_header',
  'proxy_hide_header',
  'proxy_pass_header',
  'proxy_redirect',
  'proxy_ignore_headers',
  'proxy_next_upstream',
  'proxy_cache_bypass',
  'proxy_no_cache',
  'proxy_cache_valid',
  'proxy_cache_use_stale',
  'proxy_cache_methods',
  'proxy_cache_path',
  'gzip_types',
  'gzip_proxied',
  'gzip_disable',
  'ssi_types',
  'set_real_ip_from',
  'ssl_protocols',
  'allow',
  'deny',
  'limit_req_zone',
  'limit_req',
  'limit_conn_zone',
  'limit_conn',
])

export function repeats(name: string, ctx: Context): boolean {
  return REPEATABLE.has(name) || ctx === 'upstream'
}

type Kind = 'flag' | 'time' | 'size' | 'number'

/**
 * The value type of directives whose one argument goes through ngx_conf_set_flag_slot,
 * _msec_slot/_sec_slot, _size_slot or _num_slot: checked here for every one of them, whether
 * static-server acts on it or nginx's behaviour needs nothing from us, so a bad value is
 * refused in nginx's words either way.
 */
const KINDS: ReadonlyMap<string, Kind> = new Map<string, Kind>([
  ...(
    [
      'daemon',
      'master_process',
      'multi_accept',
      'accept_mutex',
      'rewrite_log',
      'uninitialized_variable_warn',
      'autoindex',
      'autoindex_exact_size',
      'autoindex_localtime',
      'etag',
      'log_not_found',
      'absolute_redirect',
      'port_in_redirect',
      'server_name_in_redirect',
      'proxy_buffering',
      'proxy_intercept_errors',
      'gzip',
      'gzip_vary',
      'open_file_cache_errors',
      'merge_slashes',
      'real_ip_recursive',
      'sendfile',
      'tcp_nopush',
      'tcp_nodelay',
      'reset_timedout_connection',
      'chunked_transfer_encoding',
      'msie_padding',
      'ignore_invalid_headers',
      'ssi',
      'ssi_silent_errors',
      'ssi_last_modified',
      'ssi_ignore_recycled_buffers',
      'ssl_prefer_server_ciphers',
      'pcre_jit',
    ] as const
  ).map((n) => [n, 'flag'] as [string, Kind]),
  ...(
    [
      'worker_shutdown_timeout',
      'accept_mutex_delay',
      'keepalive_time',
      'client_header_timeout',
      'client_body_timeout',
      'send_timeout',
      'proxy_connect_timeout',
      'proxy_read_timeout',
      'proxy_send_timeout',
      'open_file_cache_valid',
      'lingering_time',
      'lingering_timeout',
      'resolver_timeout',
    ] as const
  ).map((n) => [n, 'time'] as [string, Kind]),
  ...(
    [
      'client_header_buffer_size',
      'client_body_buffer_size',
      'client_max_body_size',
      'proxy_buffer_size',
      'sendfile_max_chunk',
      'ssi_min_file_chunk',
      'ssi_value_length',
    ] as const
  ).map((n) => [n, 'size'] as [string, Kind]),
  ...(
    [
      'keepalive_requests',
      'proxy_next_upstream_tries',
      'open_file_cache_min_uses',
      'map_hash_max_size',
      'map_hash_bucket_size',
      'types_hash_max_size',
      'types_hash_bucket_size',
      'server_names_hash_bucket_size',
      'server_names_hash_max_size',
      'variables_hash_max_size',
      'variables_hash_bucket_size',
      'gzip_comp_level',
      'worker_rlimit_nofile',
    ] as const
  ).map((n) => [n, 'number'] as [string, Kind]),
])

export function checkValue(d: Directive): void {
  const kind = KINDS.get(d.name)
  const a = d.args[0] as string
  switch (kind) {
    case 'flag':
      flag(d)
      return
    case 'time':
      time(d, a)
      return
    case 'size':
      size(d, a)
      return
    case 'number':
      if (!/^\d+$/.test(a)) throw new NginxConfError(`"${d.name}" directive invalid number`, d.file, d.line, d.name)
      return
  }
  if (d.name === 'connection_pool_size' || d.name === 'request_pool_size') {
    // ngx_http_core_pool_size: at least NGX_MIN_POOL_SIZE (112 on x86-64), in NGX_POOL_ALIGNMENT steps.
    const n = size(d, a)
    if (n < 112) throw new NginxConfError('the pool size must be no less than 112', d.file, d.line, d.name)
    if (n % 16 !== 0) throw new NginxConfError('the pool size must be a multiple of 16', d.file, d.line, d.name)
    return
  }
  if (d.name === 'worker_connections' && !/^\d+$/.test(a)) throw new NginxConfError(`invalid number "${a}"`, d.file, d.line, d.name)
  // ngx_conf_set_bufs_slot: a count and a size, neither of them zero.
  if (BUFS.has(d.name) && (!/^\d+$/.test(a) || Number(a) === 0 || size(d, d.args[1] as string) === 0)) {
    throw new NginxConfError(`"${d.name}" directive invalid value`, d.file, d.line, d.name)
  }
}

const BUFS = new Set(['large_client_header_buffers', 'proxy_buffers', 'output_buffers'])
