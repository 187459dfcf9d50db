import { availableParallelism } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { compileTemplate, type Template } from '../variables.js'
import { NginxConfError } from './errors.js'
import type {
  AccessLogModel,
  ErrorPage,
  ListenModel,
  LocationConf,
  LocationModel,
  NginxModel,
  RewriteRule,
  ServerModel,
  ServerNameMatch,
  UpstreamModel,
  UpstreamServer,
} from './model.js'
import type { Directive } from './parse-tree.js'

export const COMBINED =
  '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"'

interface Ctx {
  prefix: string
  formats: Map<string, Template>
  upstreams: Map<string, UpstreamModel>
}

/** Turns the directive tree into the frozen model, with nginx's inheritance (http > server > location). */
export function buildModel(tree: Directive[], opts: { prefix: string; file?: string }): NginxModel {
  const ctx: Ctx = { prefix: opts.prefix, formats: new Map([['combined', compileTemplate(COMBINED)]]), upstreams: new Map() }
  let pid: string | undefined = join(opts.prefix, 'logs/nginx.pid')
  let workers = 1
  let errorLog = { path: join(opts.prefix, 'logs/error.log'), level: 'error' }
  let http: Directive | undefined
  for (const d of tree) {
    switch (d.name) {
      case 'pid':
        pid = d.args[0] === 'off' ? undefined : path(ctx, d.args[0] as string)
        break
      case 'worker_processes': {
        const a = d.args[0] as string
        workers = a === 'auto' ? availableParallelism() : int(d, a)
        if (workers < 1) throw invalid(d, a)
        break
      }
      case 'error_log':
        errorLog = { path: d.args[0] === 'stderr' ? 'stderr' : path(ctx, d.args[0] as string), level: d.args[1] ?? 'error' }
        break
      case 'daemon':
      case 'master_process':
        flag(d)
        break
      case 'http':
        if (http) throw new NginxConfError('"http" directive is duplicate', d.file, d.line, 'http')
        http = d
        break
    }
  }
  const servers: ServerModel[] = []
  if (http) {
    const block = http.block ?? []
    for (const d of block) if (d.name === 'log_format') logFormat(ctx, d)
    for (const d of block) if (d.name === 'upstream') upstream(ctx, d)
    const conf = mergeConf(ctx, defaultConf(ctx), block, 'http')
    for (const d of block) if (d.name === 'server') servers.push(server(ctx, conf, d, block))
  }
  return deepFreeze({
    ...(opts.file ? { file: opts.file } : {}),
    prefix: opts.prefix,
    ...(pid ? { pid } : {}),
    workers,
    errorLog,
    servers,
    upstreams: ctx.upstreams,
  })
}

function defaultConf(ctx: Ctx): LocationConf {
  return {
    root: compileTemplate(join(ctx.prefix, 'html')),
    alias: undefined,
    aliasPrefix: '',
    aliasRegex: false,
    index: [compileTemplate('index.html')],
    tryFiles: undefined,
    errorPages: [],
    addHeaders: [],
    expires: undefined,
    defaultType: 'text/plain',
    types: undefined,
    autoindex: false,
    etag: true,
    ifModifiedSince: 'exact',
    clientMaxBodySize: 1024 * 1024,
    accessLogs: [{ path: join(ctx.prefix, 'logs/access.log'), format: ctx.formats.get('combined') as Template }],
    proxyPass: undefined,
    proxySetHeaders: [],
    proxyHttpVersion: '1.0',
    proxyConnectTimeoutMs: 60_000,
    proxyReadTimeoutMs: 60_000,
    proxySendTimeoutMs: 60_000,
    proxyNextUpstream: new Set(['error', 'timeout']),
    gzipStatic: false,
    openFileCache: undefined,
    disableSymlinks: false,
    realIpFrom: [],
    realIpHeader: 'X-Real-IP',
    realIpRecursive: false,
    serverTokens: true,
    absoluteRedirect: true,
    portInRedirect: true,
    internal: false,
  }
}

/**
 * One level of nginx's merge: every directive set here overrides the parent's value; list
 * directives (add_header, proxy_set_header, error_page, access_log, index) replace the parent's
 * list only when this level has at least one, exactly as ngx_conf_merge_*_value does.
 */
function mergeConf(ctx: Ctx, parent: LocationConf, block: Directive[], level: string): LocationConf {
  const c: LocationConf = { ...parent, tryFiles: undefined, proxyPass: undefined, internal: false }
  const lists = { addHeaders: false, proxySetHeaders: false, errorPages: false, accessLogs: false, index: false, realIpFrom: false }
  let types: Map<string, string> | undefined
  let validMs: number | undefined
  for (const d of block) {
    const a = d.args
    const a0 = a[0] as string
    switch (d.name) {
      case 'root':
        c.root = compileTemplate(path(ctx, a0))
        c.alias = undefined
        break
      case 'alias':
        c.alias = compileTemplate(path(ctx, a0))
        break
      case 'index':
        if (!lists.index) c.index = []
        lists.index = true
        c.index = [...c.index, ...a.map(compileTemplate)]
        break
      case 'try_files':
        c.tryFiles = a.map(compileTemplate)
        break
      case 'error_page':
        if (!lists.errorPages) c.errorPages = []
        lists.errorPages = true
        c.errorPages = [...c.errorPages, errorPage(d)]
        break
      case 'add_header':
        if (!lists.addHeaders) c.addHeaders = []
        lists.addHeaders = true
        if (a[2] !== undefined && a[2] !== 'always') throw invalid(d, a[2])
        c.addHeaders = [...c.addHeaders, { name: a0, value: compileTemplate(a[1] as string), always: a[2] === 'always' }]
        break
      case 'expires':
        c.expires = expires(d)
        break
      case 'default_type':
        c.defaultType = a0
        break
      case 'types':
        types ??= new Map()
        for (const t of d.block ?? []) for (const ext of t.args) types.set(ext.toLowerCase(), t.name)
        break
      case 'autoindex':
        c.autoindex = flag(d)
        break
      case 'etag':
        c.etag = flag(d)
        break
      case 'if_modified_since':
        if (a0 !== 'off' && a0 !== 'exact' && a0 !== 'before') throw invalid(d, a0)
        c.ifModifiedSince = a0
        break
      case 'client_max_body_size':
        c.clientMaxBodySize = size(d, a0)
        break
      case 'access_log':
        if (!lists.accessLogs) c.accessLogs = []
        lists.accessLogs = true
        if (a0 !== 'off') {
          const fmt = ctx.formats.get(a[1] ?? 'combined')
          if (!fmt) throw new NginxConfError(`unknown log format "${a[1]}"`, d.file, d.line, d.name)
          const entry: AccessLogModel = { path: a0 === '/dev/stdout' || a0 === 'stdout' ? '/dev/stdout' : path(ctx, a0), format: fmt }
          c.accessLogs = [...c.accessLogs, entry]
        }
        break
      case 'proxy_pass':
        c.proxyPass = proxyPass(ctx, d)
        break
      case 'proxy_set_header':
        if (!lists.proxySetHeaders) c.proxySetHeaders = []
        lists.proxySetHeaders = true
        c.proxySetHeaders = [...c.proxySetHeaders, { name: a0, value: compileTemplate(a[1] as string) }]
        break
      case 'proxy_http_version':
        if (a0 !== '1.0' && a0 !== '1.1') throw invalid(d, a0)
        c.proxyHttpVersion = a0
        break
      case 'proxy_connect_timeout':
        c.proxyConnectTimeoutMs = time(d, a0)
        break
      case 'proxy_read_timeout':
        c.proxyReadTimeoutMs = time(d, a0)
        break
      case 'proxy_send_timeout':
        c.proxySendTimeoutMs = time(d, a0)
        break
      case 'proxy_next_upstream':
        c.proxyNextUpstream = new Set(a)
        break
      case 'gzip_static':
        if (a0 !== 'on' && a0 !== 'off' && a0 !== 'always') throw invalid(d, a0)
        c.gzipStatic = a0 !== 'off'
        break
      case 'open_file_cache':
        if (a0 === 'off') c.openFileCache = undefined
        else {
          const max = /^max=(\d+)$/.exec(a0)
          if (!max) throw invalid(d, a0)
          const inactive = a[1] ? /^inactive=(.+)$/.exec(a[1]) : null
          c.openFileCache = {
            max: Number(max[1]),
            inactiveMs: inactive ? time(d, inactive[1] as string) : 60_000,
            validMs: c.openFileCache?.validMs ?? 60_000,
          }
        }
        break
      case 'open_file_cache_valid':
        validMs = time(d, a0)
        break
      case 'disable_symlinks':
        if (a0 !== 'on' && a0 !== 'off' && a0 !== 'if_not_owner') throw invalid(d, a0)
        c.disableSymlinks = a0 !== 'off'
        break
      case 'set_real_ip_from':
        if (!lists.realIpFrom) c.realIpFrom = []
        lists.realIpFrom = true
        c.realIpFrom = [...c.realIpFrom, a0]
        break
      case 'real_ip_header':
        c.realIpHeader = a0
        break
      case 'real_ip_recursive':
        c.realIpRecursive = flag(d)
        break
      case 'server_tokens':
        c.serverTokens = a0 !== 'off'
        break
      case 'absolute_redirect':
        c.absoluteRedirect = flag(d)
        break
      case 'port_in_redirect':
        c.portInRedirect = flag(d)
        break
      case 'internal':
        c.internal = true
        break
      case 'autoindex_exact_size':
      case 'autoindex_localtime':
      case 'etag_dummy':
        break
    }
  }
  if (types) c.types = types
  if (validMs !== undefined && c.openFileCache) c.openFileCache = { ...c.openFileCache, validMs }
  void level
  return c
}

function server(ctx: Ctx, http: LocationConf, d: Directive, httpBlock: Directive[]): ServerModel {
  const block = d.block ?? []
  const conf = mergeConf(ctx, http, block, 'server')
  const listens: ListenModel[] = []
  const names: ServerNameMatch[] = []
  let primaryName = ''
  let keepAliveTimeoutMs = 75_000
  let headerTimeoutMs = 60_000
  let largeHeaderBuffers = { count: 4, size: 8192 }
  let mergeSlashes = true
  for (const x of [...httpBlock, ...block]) {
    switch (x.name) {
      case 'keepalive_timeout':
        keepAliveTimeoutMs = time(x, x.args[0] as string)
        break
      case 'client_header_timeout':
        headerTimeoutMs = time(x, x.args[0] as string)
        break
      case 'large_client_header_buffers':
        largeHeaderBuffers = { count: int(x, x.args[0] as string), size: size(x, x.args[1] as string) }
        break
      case 'merge_slashes':
        mergeSlashes = flag(x)
        break
    }
  }
  for (const x of block) {
    if (x.name === 'listen') listens.push(listen(x))
    if (x.name === 'server_name') {
      for (const n of x.args) {
        if (!primaryName) primaryName = n
        names.push(serverName(x, n))
      }
    }
  }
  // nginx's default: `listen *:80` (8000 without root); tests always give one.
  if (listens.length === 0) listens.push({ host: '0.0.0.0', port: 80, defaultServer: false, proxyProtocol: false })
  const named = new Map<string, LocationModel>()
  const locations = locationsOf(ctx, conf, block, named, undefined)
  return {
    listens,
    names,
    primaryName,
    rewrites: rewrites(block),
    conf,
    locations,
    named,
    keepAliveTimeoutMs,
    headerTimeoutMs,
    largeHeaderBuffers,
    mergeSlashes,
  }
}

function locationsOf(
  ctx: Ctx,
  parent: LocationConf,
  block: Directive[],
  named: Map<string, LocationModel>,
  outer: LocationModel | undefined,
): LocationModel[] {
  const out: LocationModel[] = []
  for (const d of block) {
    if (d.name !== 'location') continue
    let modifier = ''
    let pattern = d.args[0] as string
    if (d.args.length === 2) {
      modifier = pattern
      pattern = d.args[1] as string
      if (!['=', '^~', '~', '~*'].includes(modifier)) throw invalid(d, modifier)
    } else if (pattern.startsWith('@')) {
      modifier = '@'
    } else if (pattern.startsWith('=')) {
      modifier = '='
      pattern = pattern.slice(1)
    } else if (pattern.startsWith('^~')) {
      modifier = '^~'
      pattern = pattern.slice(2)
    } else if (pattern.startsWith('~*')) {
      modifier = '~*'
      pattern = pattern.slice(2)
    } else if (pattern.startsWith('~')) {
      modifier = '~'
      pattern = pattern.slice(1)
    }
    if (modifier === '@' && outer) {
      throw new NginxConfError(`named location "${pattern}" can be on the server level only`, d.file, d.line, d.name)
    }
    if (outer && (outer.modifier === '=' )) {
      throw new NginxConfError(`location "${pattern}" cannot be inside the exact location "${outer.pattern}"`, d.file, d.line, d.name)
    }
    if (outer && modifier !== '~' && modifier !== '~*' && outer.modifier !== '~' && outer.modifier !== '~*' && !pattern.startsWith(outer.pattern)) {
      throw new NginxConfError(`location "${pattern}" is outside location "${outer.pattern}"`, d.file, d.line, d.name)
    }
    let re: RegExp | undefined
    if (modifier === '~' || modifier === '~*') {
      try {
        re = new RegExp(pattern, modifier === '~*' ? 'i' : '')
      } catch (err) {
        throw new NginxConfError(`pcre_compile() failed: ${(err as Error).message} in "${pattern}"`, d.file, d.line, d.name)
      }
    }
    const conf = mergeConf(ctx, parent, d.block ?? [], 'location')
    conf.aliasPrefix = modifier === '' || modifier === '^~' || modifier === '=' ? pattern : ''
    conf.aliasRegex = re !== undefined
    if (conf.proxyPass) {
      if (conf.proxyPass.uri !== undefined && (re || modifier === '@')) {
        throw new NginxConfError(
          '"proxy_pass" cannot have URI part in location given by regular expression, or inside named location, or inside "if" statement, or inside "limit_except" block',
          d.file,
          d.line,
          'proxy_pass',
        )
      }
      conf.proxyPass = { ...conf.proxyPass, locationPrefix: pattern }
    }
    const loc: LocationModel = {
      modifier: modifier as LocationModel['modifier'],
      pattern,
      ...(re ? { re } : {}),
      conf,
      rewrites: rewrites(d.block ?? []),
      children: [],
    }
    if (named.has(pattern.slice(1)) || (modifier !== '@' && out.some((o) => o.modifier === modifier && o.pattern === pattern && !re))) {
      throw new NginxConfError(`duplicate location "${pattern}"`, d.file, d.line, d.name)
    }
    loc.children = locationsOf(ctx, conf, d.block ?? [], named, loc)
    if (modifier === '@') named.set(pattern.slice(1), loc)
    else out.push(loc)
  }
  return out
}

function rewrites(block: Directive[]): RewriteRule[] {
  const out: RewriteRule[] = []
  for (const d of block) {
    if (d.name === 'return') {
      const a0 = d.args[0] as string
      if (d.args.length === 1 && !/^\d+$/.test(a0)) {
        // `return URL` is a 302 to it (ngx_http_rewrite_return).
        out.push({ kind: 'return', status: 302, text: compileTemplate(a0) })
        continue
      }
      const status = Number(a0)
      if (!/^\d{3}$/.test(a0) || status > 999) throw invalid(d, a0)
      out.push(d.args[1] === undefined ? { kind: 'return', status } : { kind: 'return', status, text: compileTemplate(d.args[1]) })
    } else if (d.name === 'rewrite') {
      const flag = (d.args[2] ?? '') as 'last' | 'break' | 'redirect' | 'permanent' | ''
      if (!['', 'last', 'break', 'redirect', 'permanent'].includes(flag)) throw invalid(d, flag)
      let re: RegExp
      try {
        re = new RegExp(d.args[0] as string)
      } catch (err) {
        throw new NginxConfError(`pcre_compile() failed: ${(err as Error).message}`, d.file, d.line, d.name)
      }
      out.push({ kind: 'rewrite', re, replacement: compileTemplate(d.args[1] as string), flag })
    }
  }
  return out
}

function errorPage(d: Directive): ErrorPage {
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

function listen(d: Directive): ListenModel {
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

function serverName(d: Directive, n: string): ServerNameMatch {
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

function upstream(ctx: Ctx, d: Directive): void {
  const name = d.args[0] as string
  if (ctx.upstreams.has(name)) throw new NginxConfError(`duplicate upstream "${name}"`, d.file, d.line, d.name)
  const servers: UpstreamServer[] = []
  let keepalive = 0
  for (const x of d.block ?? []) {
    if (x.name === 'keepalive') keepalive = int(x, x.args[0] as string)
    if (x.name !== 'server') continue
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
    }
    for (const p of x.args.slice(1)) {
      const [k, v] = p.split('=') as [string, string | undefined]
      if (k === 'weight' && v) s.weight = int(x, v)
      else if (k === 'max_fails' && v) s.maxFails = int(x, v)
      else if (k === 'fail_timeout' && v) s.failTimeoutMs = time(x, v)
      else if (k === 'backup') s.backup = true
      else if (k === 'down' || k === 'max_conns' || k === 'slow_start' || k === 'resolve') continue
      else throw new NginxConfError(`invalid parameter "${p}"`, x.file, x.line, x.name)
    }
    servers.push(s)
  }
  if (servers.length === 0) throw new NginxConfError(`no servers are inside upstream`, d.file, d.line, d.name)
  ctx.upstreams.set(name, { name, servers, keepalive })
}

function proxyPass(ctx: Ctx, d: Directive) {
  const url = d.args[0] as string
  const m = /^http:\/\/([^/]+)(\/.*)?$/i.exec(url)
  if (!m) {
    if (/^https:\/\//i.test(url)) throw new NginxConfError(`https upstreams are not supported by static-server`, d.file, d.line, d.name)
    throw new NginxConfError(`invalid URL prefix in "${url}"`, d.file, d.line, d.name)
  }
  const host = m[1] as string
  void ctx
  return { upstream: host, host, uri: m[2], locationPrefix: '' }
}

function logFormat(ctx: Ctx, d: Directive): void {
  const name = d.args[0] as string
  let rest = d.args.slice(1)
  if (rest[0]?.startsWith('escape=')) rest = rest.slice(1)
  if (ctx.formats.has(name) && name !== 'combined') throw new NginxConfError(`duplicate "log_format" name "${name}"`, d.file, d.line, d.name)
  if (name === 'combined') throw new NginxConfError('duplicate "log_format" name "combined"', d.file, d.line, d.name)
  ctx.formats.set(name, compileTemplate(rest.join('')))
}

function expires(d: Directive): LocationConf['expires'] {
  const a = d.args[d.args.length - 1] as string
  if (a === 'off') return undefined
  if (a === 'epoch') return 'epoch'
  if (a === 'max') return 'max'
  const neg = a.startsWith('-')
  const v = time(d, neg ? a.slice(1) : a.replace(/^\+/, '')) / 1000
  return neg ? -v : v
}

function path(ctx: Ctx, p: string): string {
  return isAbsolute(p) || p.startsWith('$') ? p : join(ctx.prefix, p)
}

function flag(d: Directive): boolean {
  const a = d.args[0]
  if (a === 'on') return true
  if (a === 'off') return false
  throw new NginxConfError(`invalid value "${a}" in "${d.name}" directive, it must be "on" or "off"`, d.file, d.line, d.name)
}

function int(d: Directive, v: string): number {
  if (!/^\d+$/.test(v)) throw invalid(d, v)
  return Number(v)
}

const SIZE: Record<string, number> = { '': 1, k: 1024, K: 1024, m: 1024 ** 2, M: 1024 ** 2, g: 1024 ** 3, G: 1024 ** 3 }
function size(d: Directive, v: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(v)
  if (!m) throw invalid(d, v)
  return Number(m[1]) * (SIZE[m[2] as string] as number)
}

const TIME: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, M: 2_592_000_000, y: 31_536_000_000 }
/** nginx time values: `75`, `75s`, `1m30s`, `500ms`. */
function time(d: Directive, v: string): number {
  if (/^\d+$/.test(v)) return Number(v) * 1000
  let total = 0
  let rest = v
  while (rest) {
    const m = /^(\d+)(ms|s|m|h|d|w|M|y)/.exec(rest)
    if (!m) throw invalid(d, v)
    total += Number(m[1]) * (TIME[m[2] as string] as number)
    rest = rest.slice(m[0].length)
  }
  return total
}

function invalid(d: Directive, v: string): NginxConfError {
  return new NginxConfError(`invalid value "${v}" in "${d.name}" directive`, d.file, d.line, d.name)
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o) && !(o instanceof RegExp)) {
    Object.freeze(o)
    if (o instanceof Map) for (const v of o.values()) deepFreeze(v)
    else for (const v of Object.values(o)) deepFreeze(v)
  }
  return o
}
