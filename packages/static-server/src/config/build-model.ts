import { isIP } from 'node:net'
import { availableParallelism } from 'node:os'
import { dirname, join } from 'node:path'
import { accessRule } from '../access.js'
import { compileTemplate, } from '../variables.js'
import { NginxConfError } from './errors.js'
import type {
  AccessLogModel,
  LogFormat,
  ListenModel,
  LocationConf,
  LocationModel,
  NginxModel,
  ServerModel,
  ServerNameMatch,
} from './model.js'
import { checkVariables } from './check-variables.js'
import { mapBlock } from './map-block.js'
import { CHARSET_TYPES, charsetKey, charsetMap, checkRecode, emptyCharsets } from './charset-maps.js'
import { type ProxyLists, proxyDirective, resolveRedirects } from './proxy-directives.js'
import { SSI_DEFAULTS, ssiDirective } from './ssi-directives.js'
import { GZIP_DEFAULTS, type GzipLists, gzipDirective } from './gzip-directives.js'
import { CACHE_DEFAULTS, type CacheLists, cacheDirective, cacheZone, checkCacheZones } from './cache-directives.js'
import { checkLimitZones, LIMIT_DEFAULTS, type LimitLists, limitDirective, limitZone } from './limit-directives.js'
import type { Directive } from './parse-tree.js'
import { type MergeIf, rewriteProgram } from './rewrite-program.js'
import { compileRegex, namedGroups } from './variable-names.js'
import {
  deepFreeze,
  errorPage,
  expires,
  flag,
  int,
  num,
  invalid,
  listen,
  logFormat,
  path,
  tpl,
  proxyPass,
  serverName,
  size,
  sizeOrTemplate,
  time,
  timeSec,
  type Ctx,
  type HostCheck,
} from './directive-values.js'
import { addImplicitUpstreams, upstream } from './upstream-block.js'

export const COMBINED =
  '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"'


/** Turns the directive tree into the frozen model, with nginx's inheritance (http > server > location). */
export function buildModel(
  tree: Directive[],
  opts: { prefix: string; file?: string },
): { model: NginxModel; hosts: HostCheck[]; logs: ReadonlySet<string> } {
  const ctx: Ctx = {
    prefix: opts.prefix,
    confDir: opts.file === undefined ? opts.prefix : dirname(opts.file),
    formats: new Map([['combined', { template: compileTemplate(COMBINED), escape: 'default' }]]),
    upstreams: new Map(),
    vars: { maps: new Map(), names: new Set() },
    hosts: [],
    logs: new Set(),
    limitZones: new Map(),
    limitUses: [],
    cacheZones: new Map(),
    cacheUses: [],
    warnings: [],
    charsets: emptyCharsets(),
    charsetVariables: [],
  }
  let pid: string | undefined = join(opts.prefix, 'logs/nginx.pid')
  let workers = 1
  let errorLog = { path: join(opts.prefix, 'logs/error.log'), level: 'error' }
  let http: Directive | undefined
  let events: Directive | undefined
  // nginx's default (ngx_event_core_init_conf: DEFAULT_CONNECTIONS).
  let workerConnections = 512
  for (const d of tree) {
    switch (d.name) {
      case 'events':
        events = d
        for (const x of d.block ?? []) if (x.name === 'worker_connections') workerConnections = int(x, x.args[0] as string)
        break
      case 'pid':
        pid = d.args[0] === 'off' ? undefined : path(ctx, d.args[0] as string)
        break
      case 'worker_processes': {
        const a = d.args[0] as string
        if (a !== 'auto' && !/^\d+$/.test(a)) throw new NginxConfError('"worker_processes" directive invalid value', d.file, d.line, d.name)
        workers = a === 'auto' ? availableParallelism() : Number(a)
        if (workers < 1) throw invalid(d, a)
        break
      }
      case 'error_log':
        errorLog = { path: d.args[0] === 'stderr' ? 'stderr' : path(ctx, d.args[0] as string), level: d.args[1] ?? 'error' }
        if (errorLog.path !== 'stderr') ctx.logs.add(errorLog.path)
        break
      case 'daemon':
      case 'master_process':
        flag(d)
        break
      case 'http':
        http = d
        break
    }
  }
  // ngx_event_init_conf: the one section nginx cannot run without.
  if (!events) throw new NginxConfError('no "events" section in configuration', opts.file ?? 'command line', 0)
  const servers: ServerModel[] = []
  if (http) {
    const block = http.block ?? []
    for (const d of block) if (d.name === 'log_format') logFormat(ctx, d)
    for (const d of block) if (d.name === 'upstream') upstream(ctx, d)
    for (const d of block) if (d.name === 'map') mapBlock(ctx, d)
    for (const d of block) if (d.name === 'charset_map') charsetMap(ctx, d)
    for (const d of block) if (d.name === 'limit_req_zone' || d.name === 'limit_conn_zone') limitZone(ctx, d)
    for (const d of block) if (d.name === 'proxy_cache_path') cacheZone(ctx, d)
    const conf = mergeConf(ctx, defaultConf(ctx), block, 'http')
    for (const d of block) if (d.name === 'server') servers.push(server(ctx, conf, d, block))
    checkListens(block)
    // Each worker keeps its own counters; nginx's page sums every worker's (shared memory).
    // A worker's page would show a fraction: refused rather than wrong; --metrics sums them.
    const stub = ctx.stubStatusAt
    if (stub && workers > 1) {
      throw new NginxConfError('"stub_status" with "worker_processes" above 1 is not supported by static-server (use --metrics)', stub.file, stub.line, stub.name)
    }
    checkLimitZones(ctx)
    checkCacheZones(ctx, workers, http)
    // nginx's zones are shared memory every worker counts in; ours would be one per worker,
    // a limit N times looser than the file says: refused rather than weaker.
    const use = ctx.limitUses[0]
    if (use && workers > 1) {
      throw new NginxConfError(`"${use.d.name}" with "worker_processes" above 1 is not supported by static-server (each worker would count alone)`, use.d.file, use.d.line, use.d.name)
    }
    // Defined anywhere, known everywhere: nginx's variables are global to the http block.
    if (ctx.vars.names.size > 0) for (const s of servers) s.userVars = ctx.vars
  }
  // A proxy_pass host that names an upstream block is not resolved; the others are, and get
  // their own upstream.
  const hosts = ctx.hosts.filter((h) => h.unlessUpstream === undefined || !ctx.upstreams.has(h.unlessUpstream))
  addImplicitUpstreams(ctx.upstreams, servers)
  const model = deepFreeze({
    ...(opts.file ? { file: opts.file } : {}),
    prefix: opts.prefix,
    ...(pid ? { pid } : {}),
    workers,
    workerConnections,
    errorLog,
    servers,
    upstreams: ctx.upstreams,
    limitZones: ctx.limitZones,
    cacheZones: ctx.cacheZones,
    warnings: ctx.warnings,
  })
  checkVariables(model, [...ctx.formats.values(), ...ctx.charsetVariables], ctx.vars.names, opts.file ?? 'command line')
  return { model, hosts, logs: ctx.logs }
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
    recursiveErrorPages: false,
    addHeaders: [],
    addTrailers: [],
    expires: undefined,
    charset: undefined,
    sourceCharset: undefined,
    overrideCharset: false,
    charsetTypes: CHARSET_TYPES,
    charsets: ctx.charsets,
    limitRate: 0,
    limitRateAfter: 0,
    defaultType: 'text/plain',
    types: undefined,
    autoindex: false,
    autoindexFormat: 'html',
    autoindexExactSize: true,
    autoindexLocaltime: false,
    stubStatus: false,
    etag: true,
    ifModifiedSince: 'exact',
    clientMaxBodySize: 1024 * 1024,
    accessLogs: [{ path: join(ctx.prefix, 'logs/access.log'), format: ctx.formats.get('combined') as LogFormat }],
    proxyPass: undefined,
    proxySetHeaders: [],
    proxyHttpVersion: '1.0',
    proxyConnectTimeoutMs: 60_000,
    proxyReadTimeoutMs: 60_000,
    proxySendTimeoutMs: 60_000,
    proxyNextUpstream: new Set(['error', 'timeout']),
    proxyNextUpstreamTries: 0,
    proxyNextUpstreamTimeoutMs: 0,
    proxyRedirect: undefined,
    proxyHideHeaders: [],
    proxyPassHeaders: [],
    proxyIgnoreHeaders: new Set(),
    proxyPassRequestHeaders: true,
    proxyPassRequestBody: true,
    proxyInterceptErrors: false,
    // One memory page, as nginx's default (4k on x86-64 Linux).
    proxyBufferSize: 4096,
    proxyBuffering: true,
    proxyMethod: undefined,
    proxySetBody: undefined,
    gzipStatic: false,
    gzip: GZIP_DEFAULTS,
    proxyCache: CACHE_DEFAULTS,
    ssi: SSI_DEFAULTS,
    limits: LIMIT_DEFAULTS,
    openFileCache: undefined,
    disableSymlinks: false,
    realIpFrom: [],
    realIpHeader: 'X-Real-IP',
    realIpRecursive: false,
    serverTokens: true,
    absoluteRedirect: true,
    portInRedirect: true,
    serverNameInRedirect: false,
    // nginx 1.22's defaults (keepalive_requests went from 100 to 1000 in 1.19.10).
    keepaliveRequests: 1000,
    keepaliveTimeMs: 3_600_000,
    keepaliveOff: false,
    keepAliveField: '',
    keepaliveDisable: { msie6: true, safari: false },
    msiePadding: true,
    clientBodyTimeoutMs: 60_000,
    sendTimeoutMs: 60_000,
    internal: false,
    access: [],
    satisfy: 'all',
    authBasic: undefined,
    authRealm: undefined,
    authUserFile: undefined,
  }
}

/** Directives whose one argument is a time, and the field (in ms) each sets. */
const TIME_FIELDS = new Map<
  string,
  'proxyConnectTimeoutMs' | 'proxyReadTimeoutMs' | 'proxySendTimeoutMs' | 'keepaliveTimeMs' | 'clientBodyTimeoutMs' | 'sendTimeoutMs'
>([
  ['client_body_timeout', 'clientBodyTimeoutMs'],
  ['send_timeout', 'sendTimeoutMs'],
  ['proxy_connect_timeout', 'proxyConnectTimeoutMs'],
  ['proxy_read_timeout', 'proxyReadTimeoutMs'],
  ['proxy_send_timeout', 'proxySendTimeoutMs'],
  ['keepalive_time', 'keepaliveTimeMs'],
])

/**
 * One level of nginx's merge: every directive set here overrides the parent's value; list
 * directives (add_header, proxy_set_header, error_page, access_log, index) replace the parent's
 * list only when this level has at least one, exactly as ngx_conf_merge_*_value does.
 */
function mergeConf(ctx: Ctx, parent: LocationConf, block: Directive[], level: string): LocationConf {
  // stub_status is a content handler of its own block, as proxy_pass (not inherited).
  const c: LocationConf = { ...parent, tryFiles: undefined, proxyPass: undefined, internal: false, stubStatus: false }
  const lists = { addHeaders: false, addTrailers: false, proxySetHeaders: false, errorPages: false, accessLogs: false, index: false, realIpFrom: false, access: false }
  let types: Map<string, string> | undefined
  let validMs: number | undefined
  const proxyLists: ProxyLists = new Set()
  const gzipLists: GzipLists = new Set()
  const limitLists: LimitLists = new Set()
  const cacheLists: CacheLists = new Set()
  const cacheSeen = new Set<string>()
  let ssiTypesHere = false
  let userFileHere = false
  for (const d of block) {
    const a = d.args
    const a0 = a[0] as string
    if ((d.name.startsWith('proxy_cache') || d.name === 'proxy_no_cache') && cacheDirective(ctx, c, d, cacheLists, cacheSeen)) continue
    if (d.name.startsWith('proxy_') && proxyDirective(ctx, c, d, proxyLists)) continue
    if (d.name.startsWith('gzip') && gzipDirective(ctx, c, d, gzipLists)) continue
    if (d.name === 'limit_rate' || d.name === 'limit_rate_after') {
      c[d.name === 'limit_rate' ? 'limitRate' : 'limitRateAfter'] = sizeOrTemplate(d)
      continue
    }
    if (d.name.startsWith('limit_') && limitDirective(ctx, c, d, limitLists)) continue
    if (d.name.startsWith('ssi') && ssiDirective(c, d, ssiTypesHere)) {
      if (d.name === 'ssi_types') ssiTypesHere = true
      continue
    }
    const timeField = TIME_FIELDS.get(d.name)
    if (timeField !== undefined) {
      c[timeField] = time(d, a0)
      continue
    }
    switch (d.name) {
      case 'root':
        c.root = tpl(d, path(ctx, a0))
        c.alias = undefined
        break
      case 'alias':
        c.alias = tpl(d, path(ctx, a0))
        break
      case 'index':
        if (!lists.index) c.index = []
        lists.index = true
        c.index = [...c.index, ...a.map((x) => tpl(d, x))]
        break
      case 'try_files':
        c.tryFiles = a.map((x) => tpl(d, x))
        break
      case 'error_page':
        if (!lists.errorPages) c.errorPages = []
        lists.errorPages = true
        c.errorPages = [...c.errorPages, errorPage(d)]
        break
      case 'recursive_error_pages':
        c.recursiveErrorPages = flag(d)
        break
      case 'add_header':
        if (!lists.addHeaders) c.addHeaders = []
        lists.addHeaders = true
        if (a[2] !== undefined && a[2] !== 'always') throw new NginxConfError(`invalid parameter "${a[2]}"`, d.file, d.line, d.name)
        c.addHeaders = [...c.addHeaders, { name: a0, value: tpl(d, a[1] as string), always: a[2] === 'always' }]
        break
      case 'add_trailer':
        if (!lists.addTrailers) c.addTrailers = []
        lists.addTrailers = true
        if (a[2] !== undefined && a[2] !== 'always') throw new NginxConfError(`invalid parameter "${a[2]}"`, d.file, d.line, d.name)
        c.addTrailers = [...c.addTrailers, { name: a0, value: tpl(d, a[1] as string), always: a[2] === 'always' }]
        break
      case 'expires':
        c.expires = expires(d)
        break
      case 'charset':
        c.charset = a0 === 'off' ? undefined : charsetName(ctx, d, a0)
        break
      case 'source_charset':
        c.sourceCharset = charsetName(ctx, d, a0)
        break
      case 'override_charset':
        c.overrideCharset = flag(d)
        break
      case 'charset_types':
        // "in addition to text/html" (nginx's documentation), which is always one.
        c.charsetTypes = a.includes('*') ? '*' : new Set(['text/html', ...a.map((t) => t.toLowerCase())])
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
      case 'autoindex_format':
        if (a0 !== 'html' && a0 !== 'xml' && a0 !== 'json' && a0 !== 'jsonp') throw invalid(d, a0)
        c.autoindexFormat = a0
        break
      case 'autoindex_exact_size':
        c.autoindexExactSize = flag(d)
        break
      case 'autoindex_localtime':
        c.autoindexLocaltime = flag(d)
        break
      case 'stub_status':
        // Its one argument (`basic`, before 1.7.5) is accepted and means nothing, as in nginx.
        c.stubStatus = true
        ctx.stubStatusAt ??= d
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
          if (!entry.path.includes('$') && !entry.path.startsWith('/dev/')) ctx.logs.add(entry.path)
          c.accessLogs = [...c.accessLogs, entry]
        }
        break
      case 'proxy_pass':
        if (c.proxyPass) throw new NginxConfError('"proxy_pass" directive is duplicate', d.file, d.line, d.name)
        c.proxyPass = proxyPass(ctx, d)
        break
      case 'proxy_set_header':
        if (!lists.proxySetHeaders) c.proxySetHeaders = []
        lists.proxySetHeaders = true
        c.proxySetHeaders = [...c.proxySetHeaders, { name: a0, value: tpl(d, a[1] as string) }]
        break
      case 'proxy_http_version':
        // An enum slot: nginx's message names the value only.
        if (a0 !== '1.0' && a0 !== '1.1') throw new NginxConfError(`invalid value "${a0}"`, d.file, d.line, d.name)
        c.proxyHttpVersion = a0
        break
      case 'open_file_cache':
        if (a0 === 'off') c.openFileCache = undefined
        else {
          const max = /^max=(\d+)$/.exec(a0)
          if (!max) throw new NginxConfError(`invalid "open_file_cache" parameter "${a0}"`, d.file, d.line, d.name)
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
      case 'disable_symlinks': {
        if (a0 !== 'on' && a0 !== 'off' && a0 !== 'if_not_owner') throw new NginxConfError(`invalid parameter "${a0}"`, d.file, d.line, d.name)
        const from = a[1]
        if (from !== undefined && (!from.startsWith('from=') || a0 === 'off')) throw new NginxConfError(`invalid parameter "${from}"`, d.file, d.line, d.name)
        c.disableSymlinks = a0 === 'off' ? false : { ifNotOwner: a0 === 'if_not_owner', from: from ? tpl(d, from.slice(5)) : undefined }
        break
      }
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
      case 'msie_padding':
        c.msiePadding = flag(d)
        break
      case 'server_tokens':
        if (a0 !== 'on' && a0 !== 'off' && a0 !== 'build') throw invalid(d, a0)
        c.serverTokens = a0 !== 'off'
        break
      case 'absolute_redirect':
        c.absoluteRedirect = flag(d)
        break
      case 'port_in_redirect':
        c.portInRedirect = flag(d)
        break
      case 'server_name_in_redirect':
        c.serverNameInRedirect = flag(d)
        break
      case 'keepalive_requests':
        c.keepaliveRequests = num(d, a0)
        break
      case 'keepalive_timeout': {
        // The server's idle timer is read from the server level (server()); the location's value
        // decides only whether this answer keeps the connection, as ngx_http_update_location_config.
        c.keepaliveOff = time(d, a0) === 0
        // ngx_http_core_keepalive: the header's time in whole seconds; 0 writes no field
        // (ngx_http_header_filter tests it for non-zero).
        const sec = a[1] === undefined ? 0 : timeSec(d, a[1])
        c.keepAliveField = sec > 0 ? `Keep-Alive: timeout=${sec}\r\n` : ''
        break
      }
      case 'internal':
        c.internal = true
        break
      case 'keepalive_disable': {
        // A bitmask slot: `none` sets a bit of its own that means nothing.
        const kd = { msie6: false, safari: false }
        for (const v of a) {
          if (v === 'msie6' || v === 'safari') kd[v] = true
          else if (v !== 'none') throw invalid(d, v)
        }
        c.keepaliveDisable = kd
        break
      }
      case 'allow':
      case 'deny':
        if (!lists.access) c.access = []
        lists.access = true
        c.access = [...c.access, accessRule(d)]
        break
      case 'satisfy':
        if (a0 !== 'all' && a0 !== 'any') throw invalid(d, a0)
        c.satisfy = a0
        break
      case 'auth_basic':
        c.authRealm = tpl(d, a0)
        break
      case 'auth_basic_user_file':
        // ngx_http_auth_basic_user_file: once a level (the realm may be repeated, the last wins).
        if (userFileHere) throw new NginxConfError('"auth_basic_user_file" directive is duplicate', d.file, d.line, d.name)
        userFileHere = true
        c.authUserFile = tpl(d, a0)
        break
    }
  }
  // The realm and the file are inherited one by one; the check runs where both are known.
  c.authBasic = c.authRealm && c.authUserFile ? { realm: c.authRealm, file: c.authUserFile, confDir: ctx.confDir } : undefined
  if (types) c.types = types
  if (validMs !== undefined && c.openFileCache) c.openFileCache = { ...c.openFileCache, validMs }
  checkCharsets(ctx, c, block)
  void level
  return c
}

/** `charset X` / `source_charset X`: the name joins the charsets nginx knows; `$name` is read per answer. */
function charsetName(ctx: Ctx, d: Directive, name: string): string {
  // The variable must exist, as nginx's ngx_http_get_variable_index wants: checked with the rest.
  if (name.startsWith('$')) ctx.charsetVariables.push(tpl(d, name))
  else ctx.charsets.names.add(charsetKey(name))
  return name
}

/**
 * Where this level sets a charset directive or gzip: the recode nginx checks at load, and gzip
 * together with a possible recode, which static-server refuses (its recoding runs after its
 * gzip filter, where nginx's charset filter runs before).
 */
function checkCharsets(ctx: Ctx, c: LocationConf, block: Directive[]): void {
  const d = block.find((x) => x.name === 'charset' || x.name === 'source_charset' || x.name === 'override_charset' || x.name === 'gzip')
  if (d === undefined) return
  checkRecode(ctx, c.charset, c.sourceCharset, d.file)
  if (c.gzip.on && c.charset !== undefined && ctx.charsets.tables.size > 0) {
    throw new NginxConfError('"gzip on" with "charset" and a "charset_map" in one location is not supported by static-server', d.file, d.line, d.name)
  }
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
    if (x.name === 'listen') {
      const l = listen(x)
      if (!isIP(l.host)) ctx.hosts.push({ host: l.host, problem: `"${x.args[0]}" of the "listen" directive`, file: x.file, line: x.line, directive: x.name })
      listens.push(l)
    }
    if (x.name === 'server_name') {
      for (const n of x.args) {
        if (!primaryName) primaryName = n
        const match = serverName(x, n)
        if (match.kind === 'regex') namedGroups(ctx, match.re)
        names.push(match)
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
    rewrites: rewriteProgram(ctx, block, undefined, ifMerger(ctx)),
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
      if (!['=', '^~', '~', '~*'].includes(modifier)) throw new NginxConfError(`invalid location modifier "${modifier}"`, d.file, d.line, d.name)
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
    // Named groups of a regex location are variables too ($name), as in nginx.
    const re = modifier === '~' || modifier === '~*' ? compileRegex(ctx, d, pattern, modifier === '~*' ? 'i' : '') : undefined
    const conf = mergeConf(ctx, parent, d.block ?? [], 'location')
    // An alias replaces the name of the location that sets it: a nested location inheriting it
    // keeps that prefix (nginx's clcf->alias is the defining location's name length).
    if ((d.block ?? []).some((x) => x.name === 'alias')) {
      conf.aliasPrefix = modifier === '' || modifier === '^~' || modifier === '=' ? pattern : ''
      conf.aliasRegex = re !== undefined
    }
    if (conf.proxyPass) {
      if (conf.proxyPass.uri !== undefined && (re || modifier === '@')) {
        const pp = (d.block ?? []).find((x) => x.name === 'proxy_pass') ?? d
        throw new NginxConfError(
          '"proxy_pass" cannot have URI part in location given by regular expression, or inside named location, or inside "if" statement, or inside "limit_except" block',
          pp.file,
          pp.line,
          'proxy_pass',
        )
      }
      conf.proxyPass = { ...conf.proxyPass, locationPrefix: pattern }
    }
    resolveRedirects(conf, modifier === '@' ? `@${pattern.slice(1)}` : pattern)
    const loc: LocationModel = {
      modifier: modifier as LocationModel['modifier'],
      pattern,
      ...(re ? { re } : {}),
      conf,
      rewrites: rewriteProgram(ctx, d.block ?? [], conf, ifMerger(ctx)),
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

/**
 * ngx_http_add_listen's checks: one server names an address once, and one server per address
 * is its default. Addresses compare as nginx compares them (`8081` is `*:8081`).
 */
function checkListens(httpBlock: Directive[]): void {
  const defaults = new Set<string>()
  for (const s of httpBlock) {
    if (s.name !== 'server') continue
    const mine = new Set<string>()
    for (const d of s.block ?? []) {
      if (d.name !== 'listen') continue
      const l = listen(d)
      const key = l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`
      const shown = d.args[0] as string
      if (mine.has(key)) throw new NginxConfError(`a duplicate listen ${shown}`, d.file, d.line, d.name)
      mine.add(key)
      if (l.defaultServer) {
        if (defaults.has(key)) throw new NginxConfError(`a duplicate default server for ${shown}`, d.file, d.line, d.name)
        defaults.add(key)
      }
    }
  }
}

/** A location-level `if` block is merged onto its location as a nested location would be. */
function ifMerger(ctx: Ctx): MergeIf {
  return (parent, block) => mergeConf(ctx, parent, block, 'if')
}
