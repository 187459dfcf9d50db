import type { EventEmitter } from 'node:events'
import { clfNow, type Http1Request, type Http1Response, type PeerAddresses } from '@edgestack/common'
import type { LocationConf, LocationModel, ServerModel } from './config/model.js'
import type { CacheRun } from './proxy-cache.js'
import { fieldValue, type UpstreamTry, upstreamCookie, upstreamVariable } from './upstream-variables.js'
import { userVariable } from './user-variables.js'
import { basicCredentials } from './basic-credentials.js'
import { binaryAddress } from './ip-address.js'
import type { VariableSource } from './variables.js'
import type { SsiShared } from './ssi-values.js'
import { dateVariable } from './ssi-values.js'

/** What the phases write an answer to: the client's response, or a subrequest's capture (subrequest.ts). */
export type ResponseSink = Pick<
  Http1Response,
  | 'statusCode'
  | 'headersSent'
  | 'finished'
  | 'bytesWritten'
  | 'bytesSent'
  | 'headBytes'
  | 'socket'
  | 'send'
  | 'sendFormatted'
  | 'writeContinue'
  | 'writeHead'
  | 'write'
  | 'end'
  | 'pipeFrom'
  | 'hijack'
  | 'destroy'
  | 'bodyFilter'
  | 'trailers'
  | 'connectionField'
  | 'keepAliveField'
> &
  Pick<EventEmitter, 'on' | 'once' | 'off' | 'emit'>

/** nginx's r->subrequests of a main request: NGX_HTTP_MAX_SUBREQUESTS (50) + 1 levels of nesting. */
export const SUBREQUEST_DEPTH = 51

export type { UpstreamTry }

/** One request's journey through the phases: what nginx keeps in ngx_http_request_t. */
export class RequestState implements VariableSource {
  uri: string
  args: string
  /** The URI was changed by rewrite, try_files or an internal redirect. */
  uriChanged = false
  loc: LocationModel | undefined
  conf: LocationConf
  captures: RegExpExecArray | undefined
  /** Internal redirects and rewrite cycles left (nginx allows 10). */
  cycles = 10
  /** Status set by error_page for the redirected request. */
  errorStatus: number | undefined
  inErrorPage = false
  /** No further error_page applies (nginx's r->error_page). */
  errorPagesDone = false
  /** `rewrite ... break` changed the URI in the current location (proxy_pass then sends it whole). */
  rewriteBreak = false
  /** An internal redirect to a URI (index, try_files, error_page): server rewrites run again. */
  redirected = false
  /** A named location to continue in (try_files' last `@name`, error_page `@name`). */
  pendingNamed: LocationModel | undefined
  method: string
  /** $remote_addr and $remote_port: the connection's peer, until realip replaces them. */
  remoteAddr: string
  remotePort: string
  /** The TCP connection's own addresses (nginx's c->sockaddr and c->local_sockaddr). */
  readonly conn: PeerAddresses
  /** What a PROXY header said (`listen ... proxy_protocol`): $proxy_protocol_*; realip may take it. */
  readonly proxyProtocol: PeerAddresses | undefined
  /** realip replaced remoteAddr (post-read or pre-access phase); it is not replaced twice. */
  realIpSet = false
  requestFilename = ''
  documentRoot = ''
  proxyHost = ''
  /** The served file's mtime in seconds (nginx's last_modified_time), for `expires modified`. */
  lastModifiedSec: number | undefined
  /** The Location a redirect set (nginx's r->headers_out.location), made absolute when written. */
  location: string | undefined
  /** The status a `return` set, for $status while its text is built. */
  returnStatus: number | undefined
  /** $proxy_port. */
  proxyPort = ''
  /** $proxy_internal_body_length: the Content-Length nginx sends by default. */
  internalBodyLength = ''
  /** One list of tries per proxy_pass run (an internal redirect can proxy again). */
  upstreamTries: UpstreamTry[][] = []
  /** The last backend head's fields, for $upstream_http_* and $upstream_cookie_*. */
  upstreamFields: readonly string[] | undefined
  /** Fields an answer carries to the one that replaces it (X-Accel-Redirect, a 401's WWW-Authenticate). */
  carried: string[] = []
  /** A backend's X-Accel-Charset (not ignored). */
  accelCharset: string | undefined
  /** The answer's Content-Type is a backend's: its charset parameter counts (charset-filter.ts). */
  typeFromUpstream = false
  /** r->main->limit_req_set: limit_req has run for this request (internal redirects skip it). */
  limitReqSet = false
  /** $limit_req_status and $limit_conn_status ('' until the module decided). */
  limitReqStatus = ''
  limitConnStatus = ''
  /** nginx's r->gzip_vary: the gzip filter or gzip_static considered this answer (gzip_vary's field). */
  gzipVary = false
  /** $gzip_ratio, once a compressed body has been written. */
  gzipRatio = ''
  /** A Content-Type carried over by X-Accel-Redirect: the next answer keeps it. */
  carriedType: string | undefined
  /** proxy_cache's decisions for this request (r->cache, u->cache_status); undefined: not cached. */
  cacheRun: CacheRun | undefined
  /** r->limit_rate once decided: `set $limit_rate`, X-Accel-Limit-Rate, or limit_rate at the first byte (limit-rate.ts). */
  limitRate: number | undefined
  /** A subrequest (SSI include): no access or limit phases, no conditionals, ranges or gzip. */
  isSubrequest = false
  /** Nesting levels of subrequests left below this request (nginx's r->subrequests). */
  subrequestsLeft = SUBREQUEST_DEPTH
  /** The SSI filter's state shared by the main request and its subrequests. */
  ssiShared: SsiShared | undefined
  /** The timefmt of the SSI document this request's answer is (for $date_local / $date_gmt). */
  ssiTimefmt: string | undefined
  /** Runs a subrequest through the phases (server.ts sets it; subrequests inherit it). */
  runSubrequest: (sub: RequestState) => Promise<void> = async () => {}
  /** Values of map/set variables and named captures for this request (user-variables.ts). */
  userValues: Map<string, string> | undefined
  readonly start = Date.now()
  /** The error log at nginx's `alert` level, with this request's context (server.ts sets it). */
  alert: (message: string) => void = () => {}
  /** The error log at `error` level, with this request's ids as fields (server.ts sets it). */
  logError: (message: string) => void = () => {}

  constructor(
    readonly req: Http1Request,
    readonly res: ResponseSink,
    readonly server: ServerModel,
    readonly host: string,
    uri: string,
    args: string,
  ) {
    this.uri = uri
    this.args = args
    this.conf = server.conf
    this.method = req.method
    // A PROXY header's addresses are not the client's for nginx until realip says so.
    this.conn = req.viaProxy ?? req
    this.proxyProtocol = req.viaProxy ? req : undefined
    this.remoteAddr = this.conn.remoteAddress
    this.remotePort = String(this.conn.remotePort)
  }

  get(name: string): string {
    const user = this.server.userVars
    if (user?.names.has(name)) return userVariable(this, user, name)
    const req = this.req
    switch (name) {
      case 'uri':
      case 'document_uri':
        return this.uri
      case 'args':
      case 'query_string':
        return this.args
      case 'is_args':
        return this.args ? '?' : ''
      case 'request_uri':
        return req.target
      // An error page or X-Accel-Redirect turns the method into GET (r->method_name).
      case 'request_method':
        return this.method
      case 'request':
        return `${req.method} ${req.target} HTTP/${req.version}`
      case 'server_protocol':
        return `HTTP/${req.version}`
      case 'scheme':
        return 'http'
      case 'host':
        return this.host || this.server.primaryName
      case 'hostname':
        return this.server.primaryName
      case 'server_name':
        return this.server.primaryName
      case 'server_addr':
        return this.conn.localAddress
      case 'server_port':
        return String(this.conn.localPort)
      case 'remote_addr':
        return this.remoteAddr
      case 'remote_port':
        return this.remotePort
      case 'realip_remote_addr':
        return this.conn.remoteAddress
      case 'realip_remote_port':
        return String(this.conn.remotePort)
      case 'proxy_protocol_addr':
        return this.proxyProtocol?.remoteAddress ?? ''
      case 'proxy_protocol_port':
        return this.proxyProtocol ? String(this.proxyProtocol.remotePort) : ''
      case 'proxy_protocol_server_addr':
        return this.proxyProtocol?.localAddress ?? ''
      case 'proxy_protocol_server_port':
        return this.proxyProtocol ? String(this.proxyProtocol.localPort) : ''
      case 'remote_user':
        // ngx_http_variable_remote_user: the Basic user whether or not auth_basic checked it.
        return basicCredentials(req)?.user.toString('latin1') ?? ''
      // r->err_status (an error page's), else r->headers_out.status.
      case 'status':
        return String(this.res.statusCode || this.errorStatus || this.returnStatus || 0).padStart(3, '0')
      // nginx counts what went to the socket: the head in $bytes_sent, chunk framing in both.
      case 'body_bytes_sent':
        return String(this.res.bytesSent - this.res.headBytes)
      case 'bytes_sent':
        return String(this.res.bytesSent)
      // ngx_http_variable_request_get_size: r->limit_rate, 0 until something decided it.
      case 'limit_rate':
        return String(this.limitRate ?? 0)
      case 'time_local':
        return clfNow()
      case 'time_iso8601':
        return new Date().toISOString().replace(/\.\d+Z$/, '+00:00')
      case 'msec':
        return (Date.now() / 1000).toFixed(3)
      case 'request_time':
        return ((Date.now() - this.start) / 1000).toFixed(3)
      case 'document_root':
        return this.documentRoot
      case 'request_filename':
        return this.requestFilename
      case 'content_type':
        return req.header('content-type') ?? ''
      case 'content_length':
        return req.header('content-length') ?? ''
      case 'proxy_host':
        return this.proxyHost
      case 'proxy_add_x_forwarded_for': {
        const xff = req.header('x-forwarded-for')
        return xff ? `${xff}, ${this.remoteAddr}` : this.remoteAddr
      }
      case 'proxy_port':
        return this.proxyPort
      case 'proxy_internal_body_length':
        return this.internalBodyLength
      case 'upstream_addr':
      case 'upstream_status':
      case 'upstream_response_time':
      case 'upstream_header_time':
      case 'upstream_connect_time':
      case 'upstream_bytes_received':
      case 'upstream_response_length':
      case 'upstream_bytes_sent':
        return upstreamVariable(this.upstreamTries, name)
      case 'upstream_cache_status':
        return this.cacheRun?.status ?? ''
      // ngx_http_upstream_cache_last_modified / _etag: only while revalidating an expired entry.
      case 'upstream_cache_last_modified':
        return this.cacheRun?.revalidating?.lastModified ?? ''
      case 'upstream_cache_etag':
        return this.cacheRun?.revalidating?.etag ?? ''
      case 'limit_req_status':
        return this.limitReqStatus
      case 'limit_conn_status':
        return this.limitConnStatus
      case 'binary_remote_addr':
        return binaryAddress(this.remoteAddr)
      case 'gzip_ratio':
        return this.gzipRatio
      case 'connection_upgrade':
        return req.upgrade ? 'upgrade' : 'close'
      // ngx_http_ssi_date_gmt_local_variable: the SSI document's timefmt, or SSI's default.
      case 'date_local':
      case 'date_gmt':
        return dateVariable(this.ssiTimefmt ?? DEFAULT_TIMEFMT, name === 'date_local')
    }
    if (name.length === 1 && name >= '0' && name <= '9') return this.captures?.[Number(name)] ?? ''
    if (name.startsWith('http_')) return req.header(name.slice(5).replaceAll('_', '-')) ?? ''
    if (name.startsWith('arg_')) return argValue(this.args, name.slice(4))
    if (name.startsWith('cookie_')) return cookieValue(req.header('cookie') ?? '', name.slice(7))
    if (name.startsWith('sent_http_')) return ''
    if (name.startsWith('upstream_http_')) return fieldValue(this.upstreamFields, name.slice(14))
    if (name.startsWith('upstream_cookie_')) return upstreamCookie(this.upstreamFields, name.slice(16))
    return ''
  }
}

const DEFAULT_TIMEFMT = '%A, %d-%b-%Y %H:%M:%S %Z'

function argValue(args: string, key: string): string {
  for (const pair of args.split('&')) {
    const eq = pair.indexOf('=')
    if ((eq < 0 ? pair : pair.slice(0, eq)).toLowerCase() === key) return eq < 0 ? '' : pair.slice(eq + 1)
  }
  return ''
}

function cookieValue(cookie: string, key: string): string {
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=')
    if (eq >= 0 && part.slice(0, eq).trim() === key) return part.slice(eq + 1).trim()
  }
  return ''
}
