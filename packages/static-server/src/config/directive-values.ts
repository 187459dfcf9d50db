import { isAbsolute, join } from 'node:path'
import { compileTemplate, type Template } from '../variables.js'
import { NginxConfError } from './errors.js'
import type { ErrorPage, ListenModel, LocationConf, MapModel, ServerNameMatch, UpstreamModel, UpstreamServer } from './model.js'
import type { Directive } from './parse-tree.js'

/** What the builder carries across blocks: the prefix, log formats and upstreams seen so far. */
export interface Ctx {
  prefix: string
  formats: Map<string, Template>
  upstreams: Map<string, UpstreamModel>
  /** Variables defined by map, set and named captures, filled while the tree is read. */
  vars: { maps: Map<string, MapModel>; names: Set<string> }
}

/** The value parsers of single directives (sizes, times, listen, upstream servers, ...), nginx's rules and messages. */
export function errorPage(d: Directive): ErrorPage {
  const args = [...d.args]
  const target = compileTemplate(args.pop() as string)
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
  let portText = a0
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(a0) ?? /^([^:]+):(\d+)$/.exec(a0)
  if (m) {
    host = m[1] === '*' ? '0.0.0.0' : (m[1] as string)
    portText = m[2] as string
  } else if (!/^\d+$/.test(a0)) {
    host = a0
    portText = '80'
  }
  const port = Number(portText)
  if (!(port >= 0 && port <= 65535)) throw new NginxConfError(`invalid port in "${a0}" of the "listen" directive`, d.file, d.line, d.name)
  if (host === 'localhost') host = '127.0.0.1'
  let defaultServer = false
  let proxyProtocol = false
  for (const p of d.args.slice(1)) {
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
      return { kind: 'regex', re: new RegExp(n.slice(1), 'i') }
    } catch (err) {
      throw new NginxConfError(`pcre_compile() failed: ${(err as Error).message}`, d.file, d.line, d.name)
    }
  }
  const name = n.toLowerCase()
  if (name.startsWith('*.')) return { kind: 'prefix', suffix: name.slice(1), alsoBare: false }
  if (name.startsWith('.')) return { kind: 'prefix', suffix: name, alsoBare: true }
  if (name.endsWith('.*')) return { kind: 'suffix', prefix: name.slice(0, -1) }
  if (name.includes('*')) throw new NginxConfError(`invalid server name or wildcard "${n}"`, d.file, d.line, d.name)
  return { kind: 'exact', name }
}

export function upstream(ctx: Ctx, d: Directive): void {
  const name = d.args[0] as string
  if (ctx.upstreams.has(name)) throw new NginxConfError(`duplicate upstream "${name}"`, d.file, d.line, d.name)
  const servers: UpstreamServer[] = []
  // ngx_http_upstream_keepalive_module's defaults (1.22): 1000 requests, 1h, 60s idle.
  const keep = { leastConn: false, keepalive: 0, keepaliveRequests: 1000, keepaliveTimeMs: 3_600_000, keepaliveTimeoutMs: 60_000 }
  for (const x of d.block ?? []) {
    const a0 = x.args[0] as string
    if (x.name === 'least_conn') keep.leastConn = true
    else if (x.name === 'keepalive') {
      keep.keepalive = int(x, a0)
      if (keep.keepalive === 0) throw invalid(x, a0)
    } else if (x.name === 'keepalive_requests') keep.keepaliveRequests = num(x, a0)
    else if (x.name === 'keepalive_time') keep.keepaliveTimeMs = time(x, a0)
    else if (x.name === 'keepalive_timeout') {
      if (x.args.length !== 1) throw new NginxConfError(`invalid number of arguments in "${x.name}" directive`, x.file, x.line, x.name)
      keep.keepaliveTimeoutMs = time(x, a0)
    }
    if (x.name !== 'server') continue
    servers.push(upstreamServer(x))
  }
  if (servers.length === 0) throw new NginxConfError(`no servers are inside upstream`, d.file, d.line, d.name)
  ctx.upstreams.set(name, { name, servers, ...keep })
}

/** One `server` line of an upstream block, with the parameters of ngx_http_upstream_server. */
function upstreamServer(x: Directive): UpstreamServer {
  const addr = x.args[0] as string
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(addr) ?? /^([^:]+)(?::(\d+))?$/.exec(addr)
  if (!m) throw new NginxConfError(`invalid host in upstream "${addr}"`, x.file, x.line, x.name)
  const s: UpstreamServer = {
    host: m[1] === 'localhost' ? '127.0.0.1' : (m[1] as string),
    port: m[2] ? Number(m[2]) : 80,
    weight: 1,
    maxFails: 1,
    failTimeoutMs: 10_000,
    backup: false,
    down: false,
  }
  const bad = (p: string) => new NginxConfError(`invalid parameter "${p}"`, x.file, x.line, x.name)
  for (const p of x.args.slice(1)) {
    const eq = p.indexOf('=')
    const k = eq < 0 ? p : p.slice(0, eq)
    const v = eq < 0 ? undefined : p.slice(eq + 1)
    if (k === 'weight' && v !== undefined) {
      if (!/^\d+$/.test(v) || Number(v) === 0) throw bad(p)
      s.weight = Number(v)
    } else if (k === 'max_fails' && v !== undefined) {
      if (!/^\d+$/.test(v)) throw bad(p)
      s.maxFails = Number(v)
    } else if (k === 'fail_timeout' && v !== undefined) {
      if (!/^(\d+(ms|s|m|h|d|w|M|y)?)+$/.test(v)) throw bad(p)
      s.failTimeoutMs = time(x, v)
    } else if (p === 'backup') s.backup = true
    else if (p === 'down') s.down = true
    else if (k === 'max_conns') {
      // Not implemented: refused rather than accepted and ignored.
      throw new NginxConfError(`"${k}" is not supported by static-server`, x.file, x.line, x.name)
    } else throw bad(p)
  }
  return s
}

export function proxyPass(ctx: Ctx, d: Directive) {
  const url = d.args[0] as string
  const m = /^http:\/\/([^/]+)(\/.*)?$/i.exec(url)
  if (!m) {
    if (/^https:\/\//i.test(url)) throw new NginxConfError(`https upstreams are not supported by static-server`, d.file, d.line, d.name)
    throw new NginxConfError('invalid URL prefix', d.file, d.line, d.name)
  }
  const host = m[1] as string
  void ctx
  if (url.includes('$')) throw new NginxConfError('"proxy_pass" with variables is not supported by static-server', d.file, d.line, d.name)
  return { upstream: host, host, url, uri: m[2], locationPrefix: '' }
}

export function logFormat(ctx: Ctx, d: Directive): void {
  const name = d.args[0] as string
  let rest = d.args.slice(1)
  if (rest[0]?.startsWith('escape=')) rest = rest.slice(1)
  if (ctx.formats.has(name) && name !== 'combined') throw new NginxConfError(`duplicate "log_format" name "${name}"`, d.file, d.line, d.name)
  if (name === 'combined') throw new NginxConfError('duplicate "log_format" name "combined"', d.file, d.line, d.name)
  ctx.formats.set(name, compileTemplate(rest.join('')))
}

export function expires(d: Directive): LocationConf['expires'] {
  const a = d.args[d.args.length - 1] as string
  if (a === 'off') return undefined
  if (a === 'epoch') return 'epoch'
  if (a === 'max') return 'max'
  const modified = d.args.length === 2
  if (modified && d.args[0] !== 'modified') throw invalid(d, d.args[0] as string)
  const neg = a.startsWith('-')
  const v = time(d, neg ? a.slice(1) : a.replace(/^\+/, '')) / 1000
  return modified ? { modified: neg ? -v : v } : neg ? -v : v
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

const TIME: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, M: 2_592_000_000, y: 31_536_000_000 }
/** nginx time values: `75`, `75s`, `1m30s`, `500ms`. */
export function time(d: Directive, v: string): number {
  if (/^\d+$/.test(v)) return Number(v) * 1000
  let total = 0
  let rest = v
  while (rest) {
    const m = /^(\d+)(ms|s|m|h|d|w|M|y)/.exec(rest)
    if (!m) throw slotError(d, 'invalid value')
    total += Number(m[1]) * (TIME[m[2] as string] as number)
    rest = rest.slice(m[0].length)
  }
  return total
}

/** What ngx_conf_handler writes when a slot handler (size, time, number) refuses a value. */
function slotError(d: Directive, problem: string): NginxConfError {
  return new NginxConfError(`"${d.name}" directive ${problem}`, d.file, d.line, d.name)
}

export function invalid(d: Directive, v: string): NginxConfError {
  return new NginxConfError(`invalid value "${v}" in "${d.name}" directive`, d.file, d.line, d.name)
}

export { deepFreeze } from '@edgestack/common'
