import { compileBoundedPcre, RegexCompileError } from '@edgestack/common'
import { isIP } from 'node:net'
import { isAbsolute, join } from 'node:path'
import { compileTemplate, isStatic, type Template } from '../variables.js'
import { NginxConfError } from './errors.js'
import type { CacheZoneModel, CharsetModel, ErrorPage, LimitZoneModel, ListenModel, LogFormat, ExpiresValue, LocationConf, MapModel, ServerNameMatch, UpstreamModel } from './model.js'
import type { Directive } from './parse-tree.js'

/** What the builder carries across blocks: the prefix, log formats and upstreams seen so far. */
export interface Ctx {
  prefix: string
  /** nginx's conf prefix: the directory of the file given with -c. */
  confDir: string
  formats: Map<string, LogFormat>
  upstreams: Map<string, UpstreamModel>
  /** Variables defined by map, set and named captures, filled while the tree is read. */
  vars: { maps: Map<string, MapModel>; names: Set<string> }
  /** Host names nginx resolves at load, checked once the tree is read (resolve-hosts.ts). */
  hosts: HostCheck[]
  /** Log files the file names, which nginx opens before it starts (open-logs.ts). */
  logs: Set<string>
  /** nginx's `[warn]` lines of the load (`load balancing method redefined in FILE:LINE`). */
  warnings: string[]
  /** The first stub_status, refused with worker_processes > 1 once the tree is read. */
  stubStatusAt?: Directive
  /** limit_req_zone / limit_conn_zone by name, and the limit directives naming them (checked at the end). */
  limitZones: Map<string, LimitZoneModel>
  limitUses: { zone: string; kind: 'req' | 'conn'; d: Directive }[]
  /** proxy_cache_path zones by name, and the proxy_cache directives naming them (checked at the end). */
  cacheZones: Map<string, CacheZoneModel>
  cacheUses: { zone: string; d: Directive }[]
  /** charset_map tables and the charset names nginx knows (charset-maps.ts). */
  charsets: CharsetModel
  /** `charset $x` / `source_charset $x`: their variables, checked once the tree is read. */
  charsetVariables: Template[]
}

/** A name to resolve at load, and what nginx says when it cannot. */
export interface HostCheck {
  host: string
  /** `host not found in ${problem}` */
  problem: string
  file: string
  line: number
  directive: string
  /** proxy_pass names an upstream block, when one of that name exists, rather than a host. */
  unlessUpstream?: string
}

/** The parameters ngx_http_core_listen knows, bare or as `name=value`. */
const LISTEN_PARAMS = new Set(['default_server', 'default', 'ssl', 'http2', 'quic', 'proxy_protocol', 'reuseport', 'deferred', 'bind'])
const LISTEN_VALUED = new Set(['backlog', 'rcvbuf', 'sndbuf', 'accept_filter', 'ipv6only', 'so_keepalive', 'fastopen', 'setfib'])

/** The value parsers of single directives (sizes, times, listen, upstream servers, ...), nginx's rules and messages. */
export function errorPage(d: Directive): ErrorPage {
  const args = [...d.args]
  const target = tpl(d, args.pop() as string)
  let status: number | null | undefined
  const last = args[args.length - 1] as string
  if (last.startsWith('=')) {
    args.pop()
    status = last === '=' ? null : Number(last.slice(1))
    if (status !== null && !(status >= 100 && status <= 999)) throw invalid(d, last)
  }
  const codes = args.map((c) => {
    const n = Number(c)
    if (!/^\d{3}$/.test(c) || n < 300 || n > 599) {
      throw new NginxConfError(`value "${c}" must be between 300 and 599`, d.file, d.line, d.name)
    }
    return n
  })
  if (codes.length === 0) throw new NginxConfError('invalid number of arguments in "error_page" directive', d.file, d.line, d.name)
  return { codes, status, target }
}

export function listen(d: Directive): ListenModel {
  const a0 = d.args[0] as string
  let host = '0.0.0.0'
  let portText = '80'
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(a0)
  if (v6) {
    host = v6[1] as string
    portText = v6[2] ?? '80'
  } else if (a0.includes(':')) {
    const colon = a0.lastIndexOf(':')
    host = a0.slice(0, colon) === '*' ? '0.0.0.0' : a0.slice(0, colon)
    portText = a0.slice(colon + 1)
  } else if (/^\d+$/.test(a0)) portText = a0
  else host = a0
  const port = Number(portText)
  // Port 0 (any free port) is ours: nginx refuses it; tests and tooling bind that way.
  if (!/^\d+$/.test(portText) || !(port >= 0 && port <= 65535)) {
    throw new NginxConfError(`invalid port in "${a0}" of the "listen" directive`, d.file, d.line, d.name)
  }
  if (host === 'localhost') host = '127.0.0.1'
  let defaultServer = false
  let proxyProtocol = false
  for (const p of d.args.slice(1)) {
    const eq = p.indexOf('=')
    if (eq > 0 ? !LISTEN_VALUED.has(p.slice(0, eq)) : !LISTEN_PARAMS.has(p)) {
      // A missing `;` reads the next directive as parameters: `listen 127.0.0.1:8081 root /x;`.
      throw new NginxConfError(`invalid parameter "${p}"`, d.file, d.line, d.name)
    }
    if (p === 'default_server' || p === 'default') defaultServer = true
    else if (p === 'proxy_protocol') proxyProtocol = true
    else if (p === 'ssl' || p === 'http2' || p === 'quic') {
      throw new NginxConfError(`"${p}" parameter of the "listen" directive is not supported by static-server`, d.file, d.line, d.name)
    }
    // reuseport, backlog=, rcvbuf=, deferred, bind... tune the socket only.
  }
  return { host, port, defaultServer, proxyProtocol }
}

export function serverName(d: Directive, n: string): ServerNameMatch {
  if (n.startsWith('~')) {
    try {
      return { kind: 'regex', re: compileBoundedPcre(n.slice(1), true) }
    } catch (err) {
      if (!(err instanceof RegexCompileError)) throw err
      throw new NginxConfError(`pcre2_compile() failed: ${err.message} in "${n.slice(1)}"`, d.file, d.line, d.name)
    }
  }
  const name = n.toLowerCase()
  if (name.startsWith('*.')) return { kind: 'prefix', suffix: name.slice(1), alsoBare: false }
  if (name.startsWith('.')) return { kind: 'prefix', suffix: name, alsoBare: true }
  if (name.endsWith('.*')) return { kind: 'suffix', prefix: name.slice(0, -1) }
  if (name.includes('*')) throw new NginxConfError(`invalid server name or wildcard "${n}"`, d.file, d.line, d.name)
  return { kind: 'exact', name }
}

export function proxyPass(ctx: Ctx, d: Directive) {
  const url = d.args[0] as string
  const m = /^http:\/\/([^/]+)(\/.*)?$/i.exec(url)
  if (!m) {
    if (/^https:\/\//i.test(url)) throw new NginxConfError(`https upstreams are not supported by static-server`, d.file, d.line, d.name)
    throw new NginxConfError('invalid URL prefix', d.file, d.line, d.name)
  }
  const host = m[1] as string
  if (url.includes('$')) throw new NginxConfError('"proxy_pass" with variables is not supported by static-server', d.file, d.line, d.name)
  const name = /^\[?([^\]]+?)\]?(?::\d+)?$/.exec(host)?.[1] ?? host
  if (!isIP(name) && name !== 'localhost') {
    ctx.hosts.push({ host: name, problem: `upstream "${host}"`, file: d.file, line: d.line, directive: d.name, unlessUpstream: host })
  }
  return { upstream: host, host, url, uri: m[2], locationPrefix: '' }
}

export function logFormat(ctx: Ctx, d: Directive): void {
  const name = d.args[0] as string
  let rest = d.args.slice(1)
  let escaping: LogFormat['escape'] = 'default'
  if (rest[0]?.startsWith('escape=')) {
    const e = rest[0].slice(7)
    if (e !== 'default' && e !== 'json' && e !== 'none') throw new NginxConfError(`unknown log format escaping "${e}"`, d.file, d.line, d.name)
    escaping = e
    rest = rest.slice(1)
  }
  if (ctx.formats.has(name)) throw new NginxConfError(`duplicate "log_format" name "${name}"`, d.file, d.line, d.name)
  ctx.formats.set(name, { template: tpl(d, rest.join('')), escape: escaping })
}

/**
 * ngx_http_headers_expires: a value with variables (nginx 1.22 allows them) is kept to be read
 * per answer; a constant one is read now, and refused in nginx's words.
 */
export function expires(d: Directive): LocationConf['expires'] {
  const a = d.args[d.args.length - 1] as string
  const modified = d.args.length === 2
  const fail = (what: string) => new NginxConfError(`"expires" directive ${what}`, d.file, d.line, d.name)
  if (modified && d.args[0] !== 'modified') throw fail('invalid value')
  const t = tpl(d, a)
  if (!isStatic(t)) return { value: t, modified }
  const v = parseExpires(a, modified)
  if (typeof v === 'object' && 'error' in v) throw fail(v.error)
  return v === 'off' ? undefined : v
}

/**
 * ngx_http_parse_expires over one value: the model's form, `off`, or nginx's complaint. With
 * `modified`, epoch, max and off are not words but invalid times.
 */
export function parseExpires(a: string, modified: boolean): ExpiresValue | 'off' | { error: string } {
  if (!modified && (a === 'off' || a === 'epoch' || a === 'max')) return a
  const daily = a.startsWith('@')
  if (daily && modified) return { error: 'daily time cannot be used with "modified" parameter' }
  const neg = a.startsWith('-')
  const ms = parseTimeMs(daily || neg || a.startsWith('+') ? a.slice(1) : a, false)
  if (ms === undefined) return { error: 'invalid value' }
  const v = ms / 1000
  if (daily) return v > 24 * 60 * 60 ? { error: 'daily time value must be less than 24 hours' } : { daily: v }
  return modified ? { modified: neg ? -v : v } : neg ? -v : v
}

/** A template from a directive's argument, its syntax errors at the directive's line. */
export function tpl(d: Directive, text: string): Template {
  try {
    return compileTemplate(text)
  } catch (err) {
    throw new NginxConfError((err as Error).message, d.file, d.line, d.name)
  }
}

export function path(ctx: Ctx, p: string): string {
  return isAbsolute(p) || p.startsWith('$') ? p : join(ctx.prefix, p)
}

export function flag(d: Directive): boolean {
  const a = d.args[0]
  if (a === 'on') return true
  if (a === 'off') return false
  throw new NginxConfError(`invalid value "${a}" in "${d.name}" directive, it must be "on" or "off"`, d.file, d.line, d.name)
}

export function int(d: Directive, v: string): number {
  if (!/^\d+$/.test(v)) throw invalid(d, v)
  return Number(v)
}

/** A directive read by nginx's ngx_conf_set_num_slot (keepalive_requests): its own wording. */
export function num(d: Directive, v: string): number {
  if (!/^\d+$/.test(v)) throw slotError(d, 'invalid number')
  return Number(v)
}

const SIZE: Record<string, number> = { '': 1, k: 1024, K: 1024, m: 1024 ** 2, M: 1024 ** 2, g: 1024 ** 3, G: 1024 ** 3 }
export function size(d: Directive, v: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(v)
  if (!m) throw slotError(d, 'invalid value')
  return Number(m[1]) * (SIZE[m[2] as string] as number)
}

/** ngx_parse_size, which size_t values (limit_rate) go through: k and m only in nginx 1.22. */
export function parseSizeT(v: string): number | undefined {
  const m = /^(\d{1,15})([kKmM]?)$/.exec(v)
  return m ? Number(m[1]) * (SIZE[m[2] as string] as number) : undefined
}

/**
 * A size that may hold variables (ngx_http_set_complex_value_size_slot): a constant is
 * checked at load, one with variables when a request reads it.
 */
export function sizeOrTemplate(d: Directive): number | Template {
  const t = tpl(d, d.args[0] as string)
  if (!isStatic(t)) return t
  const n = parseSizeT(d.args[0] as string)
  if (n === undefined) throw slotError(d, 'invalid value')
  return n
}

const TIME: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, M: 2_592_000_000, y: 31_536_000_000 }
/** nginx time values: `75`, `75s`, `1m30s`, `500ms`. */
export function time(d: Directive, v: string): number {
  const ms = parseTimeMs(v, true)
  if (ms === undefined) throw slotError(d, 'invalid value')
  return ms
}

/** ngx_parse_time in its is_sec mode (`ms` is no unit there), in whole seconds. */
export function timeSec(d: Directive, v: string): number {
  const ms = parseTimeMs(v, false)
  if (ms === undefined) throw slotError(d, 'invalid value')
  return Math.floor(ms / 1000)
}

/** ngx_parse_time: in ms; `withMs` false is its is_sec mode (expires), where `ms` is no unit. */
export function parseTimeMs(v: string, withMs: boolean): number | undefined {
  if (/^\d+$/.test(v)) return Number(v) * 1000
  if (v === '' && !withMs) return undefined
  let total = 0
  let rest = v
  while (rest) {
    const m = /^(\d+)(ms|s|m|h|d|w|M|y)/.exec(rest)
    if (!m || (m[2] === 'ms' && !withMs)) return undefined
    total += Number(m[1]) * (TIME[m[2] as string] as number)
    rest = rest.slice(m[0].length)
  }
  return total
}

/** What ngx_conf_handler writes when a slot handler (size, time, number) refuses a value. */
function slotError(d: Directive, problem: string): NginxConfError {
  return new NginxConfError(`"${d.name}" directive ${problem}`, d.file, d.line, d.name)
}

/** ngx_conf_set_enum_slot's words, which nginx's other value checks mostly share. */
export function invalid(d: Directive, v: string): NginxConfError {
  return new NginxConfError(`invalid value "${v}"`, d.file, d.line, d.name)
}

export { deepFreeze } from '@edgestack/common'
