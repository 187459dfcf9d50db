import { isIP } from 'node:net'
import { type Ctx, num, time, tpl } from './directive-values.js'
import { NginxConfError } from './errors.js'
import type { BalanceMethod, LocationModel, ServerModel, UpstreamModel, UpstreamServer } from './model.js'
import type { Directive } from './parse-tree.js'
import { ifConfs } from './rewrite-program.js'

/** nginx 1.22's defaults for a server line (ngx_http_upstream_server) and ngx_http_upstream_keepalive_module. */
const SERVER_DEFAULTS = { weight: 1, maxFails: 1, failTimeoutSec: 10, maxConns: 0, backup: false, down: false }
const KEEPALIVE_DEFAULTS = { keepalive: 0, keepaliveRequests: 1000, keepaliveTimeMs: 3_600_000, keepaliveTimeoutMs: 60_000 }
const METHODS = new Set(['least_conn', 'ip_hash', 'hash', 'random'])
/** fail_timeout goes through ngx_parse_time(.., 1): seconds, so `ms` is not a unit there. */
const SEC_TIME = /^(\d+(s|m|h|d|w|M|y)?)+$/

/**
 * An `upstream {}` block read in order, as nginx reads it: the balancing method's directive
 * sets the server parameters that may follow (ip_hash, hash and random have no `backup`); a
 * later method replaces an earlier one, and replaces `keepalive` too when it comes after it
 * (ngx_http_upstream_keepalive wraps the method set so far: nginx warns "load balancing method
 * redefined" and no connection is kept).
 */
export function upstream(ctx: Ctx, d: Directive): void {
  const name = d.args[0] as string
  if (ctx.upstreams.has(name)) throw new NginxConfError(`duplicate upstream "${name}"`, d.file, d.line, d.name)
  const servers: UpstreamServer[] = []
  const keep = { ...KEEPALIVE_DEFAULTS }
  let method: BalanceMethod = { kind: 'round-robin' }
  let backupAllowed = true
  // ngx_http_upstream_srv_conf_t's peer.init_upstream: set by a method and by keepalive.
  let initSet = false
  for (const x of d.block ?? []) {
    const a0 = x.args[0] as string
    if (METHODS.has(x.name)) {
      if (initSet) ctx.warnings.push(`load balancing method redefined in ${x.file}:${x.line}`)
      initSet = true
      method = balanceMethod(x)
      backupAllowed = method.kind === 'least-conn'
      keep.keepalive = 0
    } else if (x.name === 'keepalive') {
      // ngx_http_upstream_keepalive's own check, worded with the directive's name.
      if (!/^\d+$/.test(a0) || Number(a0) === 0) throw new NginxConfError(`invalid value "${a0}" in "${x.name}" directive`, x.file, x.line, x.name)
      keep.keepalive = Number(a0)
      initSet = true
    } else if (x.name === 'keepalive_requests') keep.keepaliveRequests = num(x, a0)
    else if (x.name === 'keepalive_time') keep.keepaliveTimeMs = time(x, a0)
    else if (x.name === 'keepalive_timeout') {
      if (x.args.length !== 1) throw new NginxConfError(`invalid number of arguments in "${x.name}" directive`, x.file, x.line, x.name)
      keep.keepaliveTimeoutMs = time(x, a0)
    } else if (x.name === 'server') {
      const s = upstreamServer(x, backupAllowed)
      if (!isIP(s.host)) ctx.hosts.push({ host: s.host, problem: `upstream "${x.args[0]}"`, file: x.file, line: x.line, directive: 'server' })
      servers.push(s)
    }
  }
  // nginx checks at the block's end: the line of its `}`.
  if (servers.length === 0) throw new NginxConfError(`no servers are inside upstream`, d.file, d.endLine ?? d.line, d.name)
  // ngx_http_upstream_init_round_robin, at the block's own line.
  if (servers.every((s) => s.backup)) throw new NginxConfError(`no servers in upstream "${name}"`, d.file, d.line, d.name)
  ctx.upstreams.set(name, { name, servers, method, ...keep })
}

/**
 * ngx_http_upstream_add at load: every `proxy_pass http://host:port` that names no upstream
 * block gets a one-server upstream of its own (round robin, nginx's server defaults), so the
 * server finds one upstream model for every proxy_pass.
 */
export function addImplicitUpstreams(upstreams: Map<string, UpstreamModel>, servers: readonly ServerModel[]): void {
  const visit = (locs: Iterable<LocationModel>) => {
    for (const l of locs) {
      for (const c of [l.conf, ...ifConfs(l.rewrites)]) {
        const name = c.proxyPass?.upstream
        if (name !== undefined && !upstreams.has(name)) upstreams.set(name, implicitUpstream(name))
      }
      visit(l.children)
    }
  }
  for (const s of servers) {
    visit(s.locations)
    visit(s.named.values())
  }
}

function implicitUpstream(hostPort: string): UpstreamModel {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(hostPort)
  const host = m?.[1] === 'localhost' ? '127.0.0.1' : (m?.[1] ?? hostPort)
  const server = { name: hostPort, host, port: Number(m?.[2] ?? 80), ...SERVER_DEFAULTS }
  return { name: hostPort, servers: [server], method: { kind: 'round-robin' }, ...KEEPALIVE_DEFAULTS }
}

/** ip_hash, least_conn, `hash KEY [consistent]`, `random [two [least_conn]]`, in their modules' words. */
function balanceMethod(x: Directive): BalanceMethod {
  const bad = (p: string) => new NginxConfError(`invalid parameter "${p}"`, x.file, x.line, x.name)
  switch (x.name) {
    case 'least_conn':
      return { kind: 'least-conn' }
    case 'ip_hash':
      return { kind: 'ip-hash' }
    case 'hash': {
      const p = x.args[1]
      if (p !== undefined && p !== 'consistent') throw bad(p)
      return { kind: 'hash', key: tpl(x, x.args[0] as string), consistent: p !== undefined }
    }
    default: {
      const [two, least] = x.args
      if (two !== undefined && two !== 'two') throw bad(two)
      // `random two` compares connections whether or not `least_conn` is written (its only mode).
      if (least !== undefined && least !== 'least_conn') throw bad(least)
      return { kind: 'random', two: two !== undefined }
    }
  }
}

/** One `server` line of an upstream block, with the parameters of ngx_http_upstream_server. */
function upstreamServer(x: Directive, backupAllowed: boolean): UpstreamServer {
  const addr = x.args[0] as string
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(addr) ?? /^([^:]+)(?::(\d+))?$/.exec(addr)
  if (!m) throw new NginxConfError(`invalid host in upstream "${addr}"`, x.file, x.line, x.name)
  const s: UpstreamServer = {
    name: addr,
    host: m[1] === 'localhost' ? '127.0.0.1' : (m[1] as string),
    port: m[2] ? Number(m[2]) : 80,
    ...SERVER_DEFAULTS,
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
    } else if (k === 'max_conns' && v !== undefined) {
      if (!/^\d+$/.test(v)) throw bad(p)
      s.maxConns = Number(v)
    } else if (k === 'fail_timeout' && v !== undefined) {
      if (!SEC_TIME.test(v)) throw bad(p)
      s.failTimeoutSec = time(x, v) / 1000
    } else if (p === 'backup') {
      if (!backupAllowed) throw new NginxConfError(`balancing method does not support parameter "${p}"`, x.file, x.line, x.name)
      s.backup = true
    } else if (p === 'down') s.down = true
    else throw bad(p)
  }
  return s
}
