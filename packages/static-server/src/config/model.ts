import type { BoundedRegex } from '@edgestack/common'
import type { Template } from '../variables.js'

/** The typed, frozen model every part of static-server reads; nginx.conf and the flags both build it. */
export interface NginxModel {
  /** The file it came from, for -t and messages; undefined when built from flags. */
  file?: string
  prefix: string
  pid?: string
  /** worker_processes; `auto` resolved to the number of cores. */
  workers: number
  /** events { worker_connections }: most connections a worker holds at once. */
  workerConnections: number
  errorLog: { path: string; level: string }
  servers: ServerModel[]
  upstreams: ReadonlyMap<string, UpstreamModel>
  /** What nginx says as `[warn]` while it reads the file: the load goes on. */
  warnings: readonly string[]
  /** limit_req_zone / limit_conn_zone by name. */
  limitZones: ReadonlyMap<string, LimitZoneModel>
  /** proxy_cache_path zones by name. */
  cacheZones: ReadonlyMap<string, CacheZoneModel>
}

/** One proxy_cache_path: kept in memory (README), bounded by max_size, entries dropped after `inactive`. */
export interface CacheZoneModel {
  name: string
  path: string
  /** `file:line` of the directive, for nginx's "the same path name" message. */
  at: string
  inactiveMs: number
  maxBytes: number
}

/** ngx_http_proxy_module's proxy_cache* and proxy_no_cache of one level. */
export interface ProxyCacheConf {
  /** The proxy_cache_path zone; undefined: `proxy_cache off` (nginx's default). */
  zone: string | undefined
  /** undefined: nginx's default `$scheme$proxy_host$request_uri`. */
  key: Template | undefined
  /** proxy_cache_valid in the order written; status 0 is `any`. */
  valid: readonly { status: number; sec: number }[]
  bypass: readonly Template[]
  noCache: readonly Template[]
  methods: ReadonlySet<string>
  minUses: number
  /** proxy_cache_use_stale's values (`error`, `timeout`, `updating`, `http_500`, ...). */
  useStale: ReadonlySet<string>
  lock: boolean
  lockTimeoutMs: number
  lockAgeMs: number
  revalidate: boolean
  backgroundUpdate: boolean
  convertHead: boolean
}

/** One limit_req_zone or limit_conn_zone: the key each state is kept under, and its size. */
export interface LimitZoneModel {
  kind: 'req' | 'conn'
  name: string
  key: Template
  /** The key as written, for nginx's messages. */
  keySource: string
  /** Bytes: about 64 per state, as nginx counts them. */
  size: number
  /** limit_req_zone's rate, in thousandths of a request per second. */
  rate: number
}

/** limit_req and limit_conn of one level (the lists replace the parent's when a level has any). */
export interface LimitConf {
  /** `burst` and `delay` in thousandths of a request; `nodelay` is an infinite delay threshold. */
  req: readonly { zone: string; burst: number; delay: number }[]
  reqStatus: number
  reqLogLevel: string
  reqDryRun: boolean
  conn: readonly { zone: string; max: number }[]
  connStatus: number
  connLogLevel: string
  connDryRun: boolean
}

export interface ListenModel {
  host: string
  port: number
  defaultServer: boolean
  proxyProtocol: boolean
}

export type ServerNameMatch =
  | { kind: 'exact'; name: string }
  | { kind: 'prefix'; suffix: string; alsoBare: boolean } // *.example.com; .example.com also matches example.com
  | { kind: 'suffix'; prefix: string } // www.example.*
  | { kind: 'regex'; re: BoundedRegex }

export interface ServerModel {
  listens: ListenModel[]
  names: ServerNameMatch[]
  /** The first server_name: $server_name and redirects. */
  primaryName: string
  /** Server-level rewrite phase (rewrite / return / set / if / break outside locations). */
  rewrites: RewriteRule[]
  /** map/set variables; undefined when the config defines none (nothing to look up). */
  userVars?: UserVarDefs
  conf: LocationConf
  locations: LocationModel[]
  named: ReadonlyMap<string, LocationModel>
  /** Connection-level settings taken from the default server of each address, as nginx does. */
  keepAliveTimeoutMs: number
  headerTimeoutMs: number
  largeHeaderBuffers: { count: number; size: number }
  mergeSlashes: boolean
}

export type LocationModifier = '=' | '^~' | '~' | '~*' | '' | '@'

export interface LocationModel {
  modifier: LocationModifier
  pattern: string
  re?: BoundedRegex
  conf: LocationConf
  rewrites: RewriteRule[]
  children: LocationModel[]
}

/**
 * One directive of ngx_http_rewrite_module, run in the order written (the server's in the
 * server-rewrite phase, the location's in the rewrite phase). `usesPath`: a template reads
 * $request_filename or $document_root, which are computed for the current location first.
 */
export type RewriteRule =
  | { kind: 'rewrite'; re: BoundedRegex; replacement: Template; flag: 'last' | 'break' | 'redirect' | 'permanent' | ''; usesPath: boolean }
  | { kind: 'return'; status: number; text?: Template; usesPath: boolean }
  | { kind: 'set'; name: string; value: Template; usesPath: boolean }
  | { kind: 'break' }
  /** `conf`: the if block's own location configuration (a location-level `if` only). */
  | { kind: 'if'; cond: IfCondition; body: RewriteRule[]; conf: LocationConf | undefined; usesPath: boolean }

/** ngx_http_rewrite_if_condition's forms. */
export type IfCondition =
  | { kind: 'var'; value: Template }
  | { kind: 'eq'; value: Template; other: Template; negate: boolean }
  | { kind: 'regex'; value: Template; re: BoundedRegex; negate: boolean }
  | { kind: 'file'; test: 'f' | 'd' | 'e' | 'x'; path: Template; negate: boolean }

/** A `map` block (ngx_http_map_module), looked up when its variable is first read. */
export interface MapModel {
  source: Template
  hostnames: boolean
  volatile: boolean
  /** Exact keys, lower-cased: nginx hashes them with ngx_hash_strlow. */
  exact: ReadonlyMap<string, Template>
  /** hostnames: `*.example.com` / `.example.com` as `.example.com`, longest first. */
  heads: readonly { suffix: string; value: Template }[]
  /** hostnames: `mail.*` as `mail.`, longest first. */
  tails: readonly { prefix: string; value: Template }[]
  regexes: readonly { re: BoundedRegex; value: Template }[]
  default: Template
}

/** The variables the config defines (map, set, named regex captures), shared by every server. */
export interface UserVarDefs {
  maps: ReadonlyMap<string, MapModel>
  /** Every defined name: these win over built-in prefix variables ($http_*, $arg_*, ...). */
  names: ReadonlySet<string>
}

export interface ErrorPage {
  codes: number[]
  /** `=code` / `=`: the answer's status; undefined keeps the original, null takes the target's. */
  status: number | null | undefined
  target: Template
}

/** A log_format: its template and how variable values are escaped (`escape=`). */
export interface LogFormat {
  template: Template
  escape: 'default' | 'json' | 'none'
}

export interface AccessLogModel {
  path: string
  format: LogFormat
}

export interface ProxyPassModel {
  /** Upstream block name, or host:port of a URL. */
  upstream: string
  /** `$proxy_host`: the text after http:// up to the URI. */
  host: string
  /** The argument as written, without a trailing URI's effect: `proxy_redirect default`'s pattern. */
  url: string
  /** The URI part, when proxy_pass has one (replacement rules of ngx_http_proxy_module). */
  uri: string | undefined
  /** A location named by regex/@ with a URI part in proxy_pass is an nginx config error; we record the location prefix. */
  locationPrefix: string
}

/** One proxy_redirect: a plain or variable pattern matched at the start, or a regex over the whole value. */
export interface ProxyRedirectRule {
  pattern?: Template
  regex?: BoundedRegex
  replacement: Template
  /** Written as `default` (or implied): takes the proxy_pass of the location it ends up in. */
  default?: true
}

/** One `expires` value as ngx_http_parse_expires reads it: seconds from now, or one of its forms. */
export type ExpiresValue = number | 'epoch' | 'max' | { modified: number } | { daily: number }

/** One direction of a charset_map: bytes to bytes, bytes to UTF-8, or UTF-8 code points to bytes. */
export type CharsetTable =
  | { kind: 'bytes'; bytes: Buffer }
  | { kind: 'to-utf8'; bytes: readonly Buffer[] }
  | { kind: 'from-utf8'; codes: ReadonlyMap<number, number> }

/** The charsets nginx knows by name (lower-cased) and the tables, keyed `src\0dst` (lower-cased). */
export interface CharsetModel {
  names: Set<string>
  tables: Map<string, CharsetTable>
}

export interface LocationConf {
  root: Template
  alias: Template | undefined
  /** Location prefix the alias replaces. */
  aliasPrefix: string
  aliasRegex: boolean
  index: Template[]
  tryFiles: Template[] | undefined
  errorPages: ErrorPage[]
  /** recursive_error_pages: an error page's own errors may go to error_page again. */
  recursiveErrorPages: boolean
  addHeaders: { name: string; value: Template; always: boolean }[]
  /** add_trailer: fields for the last chunk of an HTTP/1.1 answer, read when its body ends. */
  addTrailers: { name: string; value: Template; always: boolean }[]
  /** seconds; undefined = off, 'epoch', 'max'. */
  /**
   * `{ modified }`: `expires modified T`, counted from the file's mtime; `{ daily }`: `expires @T`,
   * seconds after local midnight; `{ value }`: a value with variables, read per answer.
   */
  expires: ExpiresValue | { value: Template; modified: boolean } | undefined
  /** limit_rate: bytes per second an answer is sent at (0: no limit); a Template holds variables. */
  limitRate: number | Template
  /** limit_rate_after: bytes sent before limit_rate applies. */
  limitRateAfter: number | Template
  /** keepalive_disable: which browsers' requests close their connection (nginx's default: msie6). */
  keepaliveDisable: { msie6: boolean; safari: boolean }
  /** `charset X` (undefined: off; `$name`: read per answer): the answer's charset, recoded to when it differs. */
  charset: string | undefined
  /** source_charset (undefined: off; `$name`: read per answer). */
  sourceCharset: string | undefined
  /** override_charset: a proxied answer's own charset is recoded too. */
  overrideCharset: boolean
  /** charset_types, lower-cased; '*' for any. */
  charsetTypes: ReadonlySet<string> | '*'
  /** Shared by every location: charset_map's tables and the names nginx knows. */
  charsets: CharsetModel
  defaultType: string
  types: ReadonlyMap<string, string> | undefined
  autoindex: boolean
  autoindexFormat: 'html' | 'xml' | 'json' | 'jsonp'
  /** autoindex_exact_size: bytes in the HTML listing, or nginx's rounded K/M/G when off. */
  autoindexExactSize: boolean
  /** autoindex_localtime: the HTML listing's times in the server's time zone rather than GMT. */
  autoindexLocaltime: boolean
  /** ngx_http_stub_status_module's page is this location's content. */
  stubStatus: boolean
  etag: boolean
  ifModifiedSince: 'off' | 'exact' | 'before'
  clientMaxBodySize: number
  accessLogs: AccessLogModel[]
  proxyPass: ProxyPassModel | undefined
  proxySetHeaders: { name: string; value: Template }[]
  proxyHttpVersion: '1.0' | '1.1'
  proxyConnectTimeoutMs: number
  proxyReadTimeoutMs: number
  proxySendTimeoutMs: number
  proxyNextUpstream: ReadonlySet<string>
  /** 0: as many tries as the upstream has peers. */
  proxyNextUpstreamTries: number
  proxyNextUpstreamTimeoutMs: number
  /** undefined: `default` (the directive not written); false: `off`. */
  proxyRedirect: ProxyRedirectRule[] | false | undefined
  /** Lower-cased names. */
  proxyHideHeaders: string[]
  proxyPassHeaders: string[]
  proxyIgnoreHeaders: ReadonlySet<string>
  proxyPassRequestHeaders: boolean
  proxyPassRequestBody: boolean
  proxyInterceptErrors: boolean
  /** The most a backend's head may take ("upstream sent too big header"). */
  proxyBufferSize: number
  proxyBuffering: boolean
  proxyMethod: Template | undefined
  proxySetBody: Template | undefined
  /** `always` serves the `.gz` twin whatever the client says (it must be able to gunzip). */
  gzipStatic: false | 'on' | 'always'
  gzip: GzipConf
  proxyCache: ProxyCacheConf
  ssi: SsiConf
  limits: LimitConf
  openFileCache: { max: number; inactiveMs: number; validMs: number } | undefined
  /** disable_symlinks: `from` is the part of the path nginx trusts (its `from=` template). */
  disableSymlinks: false | { ifNotOwner: boolean; from: Template | undefined }
  realIpFrom: string[]
  realIpHeader: string
  realIpRecursive: boolean
  serverTokens: boolean
  absoluteRedirect: boolean
  portInRedirect: boolean
  serverNameInRedirect: boolean
  /** keepalive_requests: the request that reaches this count on its connection closes it. */
  keepaliveRequests: number
  /** keepalive_time: no request starts a new keep-alive turn after the connection is this old. */
  keepaliveTimeMs: number
  /** `keepalive_timeout 0`: every answer closes its connection. */
  keepaliveOff: boolean
  /** `keepalive_timeout T H`: `Keep-Alive: timeout=H` and its CRLF, written after `Connection: keep-alive`; '' without H. */
  keepAliveField: string
  /** msie_padding: built-in error pages padded for MSIE and Chrome (nginx's default: on). */
  msiePadding: boolean
  /** client_body_timeout: most time between two reads of a body being read (then 408, closed). */
  clientBodyTimeoutMs: number
  /** send_timeout: most time an answer may make no progress towards the client (then closed). */
  sendTimeoutMs: number
  internal: boolean
  /** allow / deny in file order; a level with any replaces its parent's list. */
  access: readonly AccessRule[]
  /** satisfy: how the access phase's modules (allow/deny, auth_basic) combine. */
  satisfy: 'all' | 'any'
  /** auth_basic with auth_basic_user_file (both set, at this level or above): the realm and the file. */
  authBasic: AuthBasicConf | undefined
  /** The two directives as inherited one by one (nginx merges each pointer on its own). */
  authRealm: Template | undefined
  authUserFile: Template | undefined
}

export interface AuthBasicConf {
  realm: Template
  file: Template
  /** A relative file name (after its variables) is taken from here: nginx's conf prefix. */
  confDir: string
}

/** The gzip filter (ngx_http_gzip_filter_module) and ngx_http_core_module's gzip_* settings. */
export interface GzipConf {
  /** `gzip on`: answers are compressed on the fly. */
  on: boolean
  /** gzip_types, lower-cased (text/html always among them); '*' for any type. */
  types: ReadonlySet<string> | '*'
  level: number
  /** gzip_min_length: a body of a known length below it is sent as it is. */
  minLength: number
  /** gzip_window and gzip_hash as zlib's windowBits and memLevel. */
  windowBits: number
  memLevel: number
  /** gzip_vary: `Vary: Accept-Encoding` on every answer the filter (or gzip_static) considered. */
  vary: boolean
  httpVersion: '1.0' | '1.1'
  /** gzip_proxied flags (`off`, `expired`, `no-cache`, ... `any`). */
  proxied: ReadonlySet<string>
  /** gzip_disable `msie6`, and its caseless regexes on User-Agent. */
  disableMsie6: boolean
  disable: readonly BoundedRegex[]
}

/** ngx_http_ssi_filter_module's settings of a level. */
export interface SsiConf {
  on: boolean
  /** ssi_types, lower-cased (text/html always among them); '*' for any type. */
  types: ReadonlySet<string> | '*'
  silentErrors: boolean
  /** ssi_last_modified: keep Last-Modified and a weak ETag instead of dropping both. */
  lastModified: boolean
  /** ssi_value_length: the longest parameter value of a command. */
  valueLength: number
}

/** One `allow` / `deny` line: the client's address masked with `mask` equals `addr`. */
export interface AccessRule {
  deny: boolean
  family: 'ipv4' | 'ipv6' | 'unix' | 'all'
  addr: bigint
  mask: bigint
}

export interface UpstreamServer {
  /** The address as written (`127.0.0.1:8080`): `hash ... consistent` hashes its points from it. */
  name: string
  host: string
  port: number
  weight: number
  maxFails: number
  /** fail_timeout, in seconds as nginx keeps it (its peers are checked against ngx_time()). */
  failTimeoutSec: number
  /** max_conns: the most requests in flight to this server (0: no limit). */
  maxConns: number
  backup: boolean
  down: boolean
}

/**
 * The balancing method of an upstream block (the last one written wins, as in nginx): round
 * robin, or one of ngx_http_upstream_{least_conn,ip_hash,hash,random}_module.
 */
export type BalanceMethod =
  | { kind: 'round-robin' }
  | { kind: 'least-conn' }
  | { kind: 'ip-hash' }
  | { kind: 'hash'; key: Template; consistent: boolean }
  /** `random two [least_conn]`: of two random picks, the one with fewer connections for its weight. */
  | { kind: 'random'; two: boolean }

export interface UpstreamModel {
  name: string
  servers: UpstreamServer[]
  method: BalanceMethod
  /** `keepalive N`: idle connections cached (0: none, every answer closes its connection). */
  keepalive: number
  keepaliveRequests: number
  keepaliveTimeMs: number
  keepaliveTimeoutMs: number
}
