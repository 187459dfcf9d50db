import { compileTemplate } from '../variables.js'
import { type Ctx, flag, invalid, size, time } from './directive-values.js'
import { NginxConfError } from './errors.js'
import type { LocationConf, ProxyRedirectRule } from './model.js'
import type { Directive } from './parse-tree.js'
import { compileRegex } from './variable-names.js'

/** proxy_ignore_headers' values (ngx_http_upstream_ignore_headers_masks). */
const IGNORABLE = new Set(['x-accel-redirect', 'x-accel-expires', 'x-accel-limit-rate', 'x-accel-buffering', 'x-accel-charset', 'expires', 'cache-control', 'set-cookie', 'vary'])

/** proxy_next_upstream's values (ngx_http_proxy_next_upstream_masks). */
const NEXT_UPSTREAM = new Set(['error', 'timeout', 'invalid_header', 'non_idempotent', 'http_500', 'http_502', 'http_503', 'http_504', 'http_403', 'http_404', 'http_429', 'updating', 'off'])

/** The list directives of this module: each replaces its parent's list at the first use in a level. */
export type ProxyLists = Set<'proxyHideHeaders' | 'proxyPassHeaders' | 'proxyRedirect' | 'proxyIgnoreHeaders'>

/**
 * The ngx_http_proxy_module directives beyond proxy_pass / proxy_set_header: applied to `c` at
 * one level of the merge. Returns false for a directive it does not own.
 */
export function proxyDirective(ctx: Ctx, c: LocationConf, d: Directive, lists: ProxyLists): boolean {
  const a = d.args
  const a0 = a[0] as string
  switch (d.name) {
    case 'proxy_hide_header':
    case 'proxy_pass_header': {
      const key = d.name === 'proxy_hide_header' ? 'proxyHideHeaders' : 'proxyPassHeaders'
      if (!lists.has(key)) c[key] = []
      lists.add(key)
      c[key] = [...c[key], a0.toLowerCase()]
      return true
    }
    case 'proxy_ignore_headers': {
      for (const v of a) if (!IGNORABLE.has(v.toLowerCase())) throw new NginxConfError(`invalid value "${v}"`, d.file, d.line, d.name)
      // A bitmask slot: a second line at the same level adds to the first.
      const before = lists.has('proxyIgnoreHeaders') ? [...c.proxyIgnoreHeaders] : []
      lists.add('proxyIgnoreHeaders')
      c.proxyIgnoreHeaders = new Set([...before, ...a.map((v) => v.toLowerCase())])
      return true
    }
    case 'proxy_pass_request_headers':
      c.proxyPassRequestHeaders = flag(d)
      return true
    case 'proxy_pass_request_body':
      c.proxyPassRequestBody = flag(d)
      return true
    case 'proxy_intercept_errors':
      c.proxyInterceptErrors = flag(d)
      return true
    case 'proxy_buffering':
      c.proxyBuffering = flag(d)
      return true
    case 'proxy_buffer_size':
      c.proxyBufferSize = size(d, a0)
      return true
    case 'proxy_buffers':
      // The number and size of the body buffers: ours streams with backpressure (README).
      if (!/^\d+$/.test(a0) || Number(a0) === 0) throw invalid(d, a0)
      size(d, a[1] as string)
      return true
    case 'proxy_next_upstream':
      for (const v of a) if (!NEXT_UPSTREAM.has(v)) throw new NginxConfError(`invalid value "${v}"`, d.file, d.line, d.name)
      c.proxyNextUpstream = new Set(a)
      return true
    case 'proxy_next_upstream_tries':
      if (!/^\d+$/.test(a0)) throw new NginxConfError(`"${d.name}" directive invalid number`, d.file, d.line, d.name)
      c.proxyNextUpstreamTries = Number(a0)
      return true
    case 'proxy_next_upstream_timeout':
      c.proxyNextUpstreamTimeoutMs = time(d, a0)
      return true
    case 'proxy_method':
      c.proxyMethod = compileTemplate(a0)
      return true
    case 'proxy_set_body':
      c.proxySetBody = compileTemplate(a0)
      return true
    case 'proxy_redirect':
      proxyRedirect(ctx, c, d, lists)
      return true
  }
  return false
}

/**
 * ngx_http_proxy_redirect: `off`, `default` (the proxy_pass URL to the location's
 * name, resolved where proxy_pass is known), or a pattern (plain, with variables, or `~` /
 * `~*` regex) and its replacement.
 */
function proxyRedirect(ctx: Ctx, c: LocationConf, d: Directive, lists: ProxyLists): void {
  const a0 = d.args[0] as string
  if (d.args.length === 1) {
    if (a0 === 'off') {
      c.proxyRedirect = false
      lists.add('proxyRedirect')
      return
    }
    if (a0 !== 'default') throw new NginxConfError(`invalid parameter "${a0}"`, d.file, d.line, d.name)
    if (c.proxyPass === undefined) throw new NginxConfError('"proxy_redirect default" should be placed after the "proxy_pass" directive', d.file, d.line, d.name)
  }
  if (!lists.has('proxyRedirect') || c.proxyRedirect === false || c.proxyRedirect === undefined) c.proxyRedirect = []
  lists.add('proxyRedirect')
  let rule: ProxyRedirectRule
  if (d.args.length === 1) rule = defaultRedirect(c, '')
  else {
    const replacement = compileTemplate(d.args[1] as string)
    if (a0.startsWith('~*')) rule = { regex: compileRegex(ctx, d, a0.slice(2), 'i'), replacement }
    else if (a0.startsWith('~')) rule = { regex: compileRegex(ctx, d, a0.slice(1), ''), replacement }
    else rule = { pattern: compileTemplate(a0), replacement }
  }
  c.proxyRedirect = [...c.proxyRedirect, rule]
}

/**
 * `proxy_redirect default`: the proxy_pass URL (with `/` added when it has no URI part) turns
 * into the location's name (or `/`), as ngx_http_proxy_merge_loc_conf builds it.
 */
export function defaultRedirect(c: LocationConf, locationName: string): ProxyRedirectRule {
  const pp = c.proxyPass
  if (!pp) return { pattern: compileTemplate(''), replacement: compileTemplate(''), default: true }
  if (pp.uri !== undefined) return { pattern: [pp.url], replacement: [locationName], default: true }
  return { pattern: [`${pp.url}/`], replacement: ['/'], default: true }
}

/** Once a location's proxy_pass and name are known: `default` rules (explicit or implied) take their values. */
export function resolveRedirects(c: LocationConf, locationName: string): void {
  if (!c.proxyPass || c.proxyRedirect === false) return
  if (c.proxyRedirect === undefined) {
    c.proxyRedirect = [defaultRedirect(c, locationName)]
    return
  }
  c.proxyRedirect = c.proxyRedirect.map((r) => (r.default ? defaultRedirect(c, locationName) : r))
}
