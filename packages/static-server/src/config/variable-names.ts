import { type BoundedRegex, compileBoundedPcre, RegexCompileError } from '@edgestack/common'
import { NginxConfError } from './errors.js'
import type { Ctx } from './directive-values.js'
import type { Directive } from './parse-tree.js'

/**
 * nginx's own variables (ngx_http_variables.c, the proxy, upstream and realip modules) that are
 * not NGX_HTTP_VAR_CHANGEABLE: `map` or `set` on one of them is "the duplicate ... variable".
 * `$args` is changeable (set rewrites the query string); prefix families ($http_x, $arg_x,
 * $cookie_x) are not in nginx's name hash, so a map or set of that name shadows them.
 */
export const BUILTIN = new Set([
  'http_host', 'http_user_agent', 'http_referer', 'http_via', 'http_x_forwarded_for', 'http_cookie',
  'content_length', 'content_type', 'host', 'binary_remote_addr', 'remote_addr', 'remote_port',
  'proxy_protocol_addr', 'proxy_protocol_port', 'proxy_protocol_server_addr', 'proxy_protocol_server_port',
  'server_addr', 'server_port', 'server_protocol', 'scheme', 'https', 'request_uri', 'uri', 'document_uri', 'request',
  'document_root', 'realpath_root', 'query_string', 'is_args', 'request_filename', 'server_name',
  'request_method', 'remote_user', 'bytes_sent', 'body_bytes_sent', 'pipe', 'request_completion',
  'request_body', 'request_body_file', 'request_length', 'request_time', 'request_id', 'status',
  'sent_http_content_type', 'sent_http_content_length', 'sent_http_location', 'sent_http_last_modified',
  'sent_http_connection', 'sent_http_keep_alive', 'sent_http_transfer_encoding', 'sent_http_cache_control',
  'sent_http_link', 'connection', 'connection_requests', 'connection_time', 'nginx_version', 'hostname',
  'pid', 'msec', 'time_iso8601', 'time_local', 'proxy_host', 'proxy_port', 'proxy_add_x_forwarded_for',
  'upstream_addr', 'upstream_status', 'upstream_response_time', 'upstream_connect_time',
  'upstream_header_time', 'upstream_response_length', 'upstream_bytes_received', 'upstream_bytes_sent',
  'upstream_cache_status', 'upstream_cache_last_modified', 'upstream_cache_etag', 'realip_remote_addr', 'realip_remote_port', 'gzip_ratio',
])

/**
 * Registers the variable a `map` or `set` defines (ngx_http_add_variable with
 * NGX_HTTP_VAR_CHANGEABLE) and returns its name without `$`. Two maps of one variable are
 * refused: nginx lets the later map silently replace the earlier one (DIFFERENCES.md).
 */
export function defineVariable(ctx: Ctx, d: Directive, raw: string): string {
  const name = raw.startsWith('$') ? raw.slice(1) : ''
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new NginxConfError(`invalid variable name "${raw}"`, d.file, d.line, d.name)
  if (BUILTIN.has(name) || (d.name === 'map' && ctx.vars.maps.has(name))) {
    throw new NginxConfError(`the duplicate "${name}" variable`, d.file, d.line, d.name)
  }
  // nginx's other changeable built-in: `set` writes r->limit_rate (limit-rate.ts). A map of it
  // would only change what reading $limit_rate gives, not the rate: refused rather than that.
  if (name === 'limit_rate' && d.name === 'map') throw new NginxConfError('"map" of "$limit_rate" is not supported by static-server: use "set $limit_rate"', d.file, d.line, d.name)
  if (name !== 'args' && name !== 'limit_rate') ctx.vars.names.add(name)
  return name
}

/**
 * A PCRE pattern with PCRE's meaning (common's pcre-to-js.ts: `(?P<name>...)`, `\Q...\E`, POSIX
 * classes, inline options) and a bounded match; its named groups become variables.
 */
export function compileRegex(ctx: Ctx, d: Directive, source: string, flags: string): BoundedRegex {
  let re: BoundedRegex
  try {
    re = compileBoundedPcre(source, flags === 'i')
  } catch (err) {
    if (!(err instanceof RegexCompileError)) throw err
    throw new NginxConfError(`pcre2_compile() failed: ${err.message} in "${source}"`, d.file, d.line, d.name)
  }
  namedGroups(ctx, re)
  return re
}

/** Registers a regex's named groups as variables (server_name regexes are compiled elsewhere). */
export function namedGroups(ctx: Ctx, re: BoundedRegex): void {
  for (const name of re.groupNames) ctx.vars.names.add(name)
}
