/**
 * The blocks a directive may appear in, as nginx's NGX_*_CONF flags. `if` is an `if` block in a
 * location (NGX_HTTP_LIF_CONF), `sif` one in a server (NGX_HTTP_SIF_CONF: rewrite module only),
 * `map` the key/value lines of a map block.
 */
export type Context = 'main' | 'events' | 'http' | 'server' | 'location' | 'upstream' | 'types' | 'if' | 'sif' | 'map'

export interface DirectiveSpec {
  contexts: readonly Context[]
  min: number
  max: number
  /** Opens a block (`http {`); its children are checked against `inner`. */
  block?: Context
}

const MAIN: Context[] = ['main']
const HTTP: Context[] = ['http']
const HSL: Context[] = ['http', 'server', 'location']
const HS: Context[] = ['http', 'server']
const SL: Context[] = ['server', 'location']
const HSLI: Context[] = ['http', 'server', 'location', 'if']
/** The rewrite module's directives: NGX_HTTP_SRV_CONF|NGX_HTTP_SIF_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LIF_CONF. */
const REWRITE: Context[] = ['server', 'sif', 'location', 'if']
const INF = Number.POSITIVE_INFINITY

const d = (contexts: Context[], min: number, max = min, block?: Context): DirectiveSpec =>
  block ? { contexts, min, max, block } : { contexts, min, max }

/**
 * Every directive we accept, with nginx's contexts and argument counts (from its module
 * sources). Those marked "tuning" change nothing a client can observe of our server, so they
 * are accepted and ignored: the same file then runs under both programs.
 */
export const DIRECTIVES: ReadonlyMap<string, DirectiveSpec> = new Map<string, DirectiveSpec>([
  ['include', d(['main', 'events', 'http', 'server', 'location', 'upstream', 'types', 'if', 'sif', 'map'], 1)],
  ['worker_processes', d(MAIN, 1)],
  ['pid', d(MAIN, 1)],
  ['daemon', d(MAIN, 1)],
  ['master_process', d(MAIN, 1)],
  ['error_log', d(['main', 'http', 'server', 'location'], 1, INF)],
  ['user', d(MAIN, 1, 2)],
  ['worker_rlimit_nofile', d(MAIN, 1)],
  ['worker_cpu_affinity', d(MAIN, 1, INF)],
  ['worker_priority', d(MAIN, 1)],
  ['worker_shutdown_timeout', d(MAIN, 1)],
  ['pcre_jit', d(MAIN, 1)],
  ['env', d(MAIN, 1)],
  ['load_module', d(MAIN, 1)],
  ['thread_pool', d(MAIN, 2, 3)],
  ['events', d(MAIN, 0, 0, 'events')],
  ['worker_connections', d(['events'], 1)],
  ['use', d(['events'], 1)],
  ['multi_accept', d(['events'], 1)],
  ['accept_mutex', d(['events'], 1)],
  ['accept_mutex_delay', d(['events'], 1)],
  ['http', d(MAIN, 0, 0, 'http')],
  ['server', d(['http', 'upstream'], 0, INF)],
  ['upstream', d(HTTP, 1, 1, 'upstream')],
  ['keepalive', d(['upstream'], 1)],
  ['keepalive_requests', d(['http', 'server', 'location', 'upstream'], 1)],
  ['keepalive_time', d(['http', 'server', 'location', 'upstream'], 1)],
  ['least_conn', d(['upstream'], 0)],
  ['ip_hash', d(['upstream'], 0)],
  ['location', d(['server', 'location'], 1, 2, 'location')],
  ['types', d(HSL, 0, 0, 'types')],
  ['listen', d(['server'], 1, INF)],
  ['server_name', d(['server'], 1, INF)],
  ['root', d([...HSL, 'if'], 1)],
  ['alias', d(['location'], 1)],
  ['index', d(HSL, 1, INF)],
  ['try_files', d(SL, 2, INF)],
  ['return', d(REWRITE, 1, 2)],
  ['rewrite', d(REWRITE, 2, 3)],
  ['set', d(REWRITE, 2)],
  ['break', d(REWRITE, 0)],
  ['if', d(['server', 'location'], 1, INF, 'if')],
  ['rewrite_log', d([...HSL, 'sif', 'if'], 1)],
  ['uninitialized_variable_warn', d([...HSL, 'sif', 'if'], 1)],
  ['map', d(HTTP, 2, 2, 'map')],
  ['map_hash_max_size', d(HTTP, 1)],
  ['map_hash_bucket_size', d(HTTP, 1)],
  ['error_page', d([...HSL, 'if'], 2, INF)],
  ['add_header', d(HSLI, 2, 3)],
  ['expires', d(HSLI, 1, 2)],
  ['default_type', d(HSL, 1)],
  ['autoindex', d(HSL, 1)],
  ['stub_status', d(['server', 'location'], 0, 1)],
  ['autoindex_exact_size', d(HSL, 1)],
  ['autoindex_localtime', d(HSL, 1)],
  ['autoindex_format', d(HSL, 1)],
  ['etag', d(HSL, 1)],
  ['if_modified_since', d(HSL, 1)],
  ['keepalive_timeout', d(HSL, 1, 2)],
  ['client_max_body_size', d(HSL, 1)],
  ['client_header_timeout', d(HS, 1)],
  ['client_body_timeout', d(HSL, 1)],
  ['send_timeout', d(HSL, 1)],
  ['client_header_buffer_size', d(HS, 1)],
  ['large_client_header_buffers', d(HS, 2)],
  ['client_body_buffer_size', d(HSL, 1)],
  ['access_log', d([...HSL, 'if'], 1, INF)],
  ['log_format', d(HTTP, 2, INF)],
  ['log_not_found', d(HSL, 1)],
  ['server_tokens', d(HSL, 1)],
  ['absolute_redirect', d(HSL, 1)],
  ['port_in_redirect', d(HSL, 1)],
  ['server_name_in_redirect', d(HSL, 1)],
  ['proxy_pass', d(['location', 'if'], 1)],
  ['proxy_set_header', d(HSL, 2)],
  ['proxy_http_version', d(HSL, 1)],
  ['proxy_connect_timeout', d(HSL, 1)],
  ['proxy_read_timeout', d(HSL, 1)],
  ['proxy_send_timeout', d(HSL, 1)],
  ['proxy_next_upstream', d(HSL, 1, INF)],
  ['proxy_next_upstream_tries', d(HSL, 1)],
  ['proxy_buffering', d(HSL, 1)],
  ['proxy_buffers', d(HSL, 2)],
  ['proxy_buffer_size', d(HSL, 1)],
  ['proxy_redirect', d(HSL, 1, 2)],
  ['proxy_intercept_errors', d(HSL, 1)],
  ['proxy_cache_bypass', d(HSL, 1, INF)],
  ['gzip', d([...HSL, 'if'], 1)],
  ['gzip_static', d(HSL, 1)],
  ['gzip_types', d(HSL, 1, INF)],
  ['gzip_vary', d(HSL, 1)],
  ['gzip_comp_level', d(HSL, 1)],
  ['gzip_proxied', d(HSL, 1, INF)],
  ['open_file_cache', d(HSL, 1, 2)],
  ['open_file_cache_valid', d(HSL, 1)],
  ['open_file_cache_min_uses', d(HSL, 1)],
  ['open_file_cache_errors', d(HSL, 1)],
  ['disable_symlinks', d(HSL, 1, 2)],
  ['merge_slashes', d(HS, 1)],
  ['set_real_ip_from', d(HSL, 1)],
  ['real_ip_header', d(HSL, 1)],
  ['real_ip_recursive', d(HSL, 1)],
  ['charset', d([...HSLI, 'sif'], 1)],
  ['sendfile', d(HSLI, 1)],
  ['sendfile_max_chunk', d(HSL, 1)],
  ['tcp_nopush', d(HSL, 1)],
  ['tcp_nodelay', d(HSL, 1)],
  ['aio', d(HSL, 1)],
  ['directio', d(HSL, 1)],
  ['output_buffers', d(HSL, 2)],
  ['reset_timedout_connection', d(HSL, 1)],
  ['types_hash_max_size', d(HSL, 1)],
  ['types_hash_bucket_size', d(HSL, 1)],
  ['server_names_hash_bucket_size', d(HTTP, 1)],
  ['server_names_hash_max_size', d(HTTP, 1)],
  ['variables_hash_max_size', d(HTTP, 1)],
  ['variables_hash_bucket_size', d(HTTP, 1)],
  ['client_body_temp_path', d(HSL, 1, 4)],
  ['proxy_temp_path', d(HSL, 1, 4)],
  ['fastcgi_temp_path', d(HSL, 1, 4)],
  ['uwsgi_temp_path', d(HSL, 1, 4)],
  ['scgi_temp_path', d(HSL, 1, 4)],
  ['internal', d(['location'], 0)],
  ['chunked_transfer_encoding', d(HSL, 1)],
  ['msie_padding', d(HSL, 1)],
  ['lingering_close', d(HSL, 1)],
  ['lingering_time', d(HSL, 1)],
  ['lingering_timeout', d(HSL, 1)],
  ['resolver', d(HSL, 1, INF)],
  ['resolver_timeout', d(HSL, 1)],
  ['ssl_protocols', d(HS, 1, INF)],
  ['ssl_prefer_server_ciphers', d(HS, 1)],
  // ngx_http_access_module and the core's satisfy (not in `if`: nginx allows them in limit_except only).
  ['allow', d(HSL, 1)],
  ['deny', d(HSL, 1)],
  ['satisfy', d(HSL, 1)],
])
