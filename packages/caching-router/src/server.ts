import { hostname } from 'node:os'
import {
  type AccessLog,
  createHttp1Server,
  escapeLogValue,
  formatAddress,
  getHeader,
  type HostPort,
  removeHeader,
  Http1ParseError,
  type Http1Request,
  type Http1Response,
  type Http1Server,
  type Logger,
  StartupError,
} from '@edgestack/common'
import { createAdminServer } from './admin.js'
import { Backend } from './backend.js'
import { BanList } from './bans.js'
import { Counters } from './counters.js'
import { Fetcher } from './fetch.js'
import { Responder } from './respond.js'
import { ncsaLine } from './ncsa.js'
import type { Params } from './params.js'
import { pipeTo } from './pipe.js'
import type { BereqObj, Policy, ReqObj } from './policy.js'
import { CacheStore } from './store.js'
import { guruMeditation } from './synth.js'
import type { VclRegistry } from './vcl/index.js'

export interface ListenSpec {
  address: HostPort
  /** `-a addr,PROXY`: a PROXY protocol v1/v2 header comes first on every connection. */
  proxy: boolean
}

export interface RouterModel {
  listen: ListenSpec[]
  /** Backends by name; `req.backend_hint` names one. */
  backends: Record<string, HostPort>
  defaultBackend: string
  /**
   * A backend not in `backends`: the address a name stands for (a VCL policy names its
   * backends `name@host:port`, so one loaded later by vcl.load brings its own).
   */
  backendAddress?(name: string): HostPort | undefined
  policy: Policy
  /** `-s malloc,SIZE`. */
  storageBytes: number
  params: Params
  /** What Via names (varnishd: the host name, or `-i`). */
  identity?: string
  /** `-T` / `-S`: the admin CLI address and the secret file's contents. */
  admin?: { address: HostPort; secret: Buffer | undefined }
  /** With `-f`: the loaded VCLs, for the admin CLI's vcl.* commands and SIGHUP. */
  vcl?: VclRegistry
  /** `-f FILE`: what SIGHUP re-reads. */
  vclFile?: string
  /** Append varnishncsa's `%{Varnish:handling}x` (hit, miss, pass, pipe, synth) to access lines. */
  logHandling?: boolean
}

export interface CachingRouter {
  listen(): Promise<HostPort[]>
  close(opts?: { drainTimeoutMs?: number }): Promise<void>
  readonly counters: Counters
  readonly store: CacheStore
  readonly params: Params
  readonly bans: BanList
  /** The admin CLI's bound address, once listening. */
  adminAddress: HostPort | undefined
  /** SIGHUP: re-read `-f` and use it; a file that does not compile changes nothing. */
  reload(): Promise<void>
}

/** Writes the request's access line once, with varnishncsa's handling; see `handle`. */
type AccessLogFn = (handling: string, answered?: number) => void

/** varnishd's HTTP_HDR_FIRST: the header slots the request line takes out of http_max_hdr. */
const REQUEST_LINE_HDRS = 5

/** Methods after whose success RFC 9111 §4.4 says the stored responses are invalid. */
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

/**
 * varnishd's job: a caching reverse proxy whose every decision is the policy's (builtin.vcl by
 * default, the article's routing with --static-backend/--app-backend, compiled VCL later).
 */
export function createCachingRouter(model: RouterModel, logger: Logger, access: AccessLog): CachingRouter {
  const params = model.params
  const counters = new Counters()
  const store = new CacheStore(model.storageBytes, counters)
  const bans = new BanList(counters)
  store.setBans(bans)
  const admin = model.admin
    ? createAdminServer({
        params,
        counters,
        bans,
        oldestBanSeq: () => store.oldestBanSeq(),
        logger,
        secret: model.admin.secret,
        vcl: model.vcl,
        extraStats: () => ({ SMA_g_bytes: store.bytes, SMA_g_space: store.maxBytes - store.bytes }),
      })
    : undefined
  const backends = new Map<string, Backend>()
  for (const [name, addr] of Object.entries(model.backends)) {
    backends.set(name, new Backend(name, addr, { connectTimeoutMs: params.get('connect_timeout') * 1000 }))
  }
  const backendOf = (name: string): Backend | undefined => {
    let b = backends.get(name)
    if (b !== undefined) return b
    const addr = model.backendAddress?.(name)
    if (addr === undefined) return undefined
    b = new Backend(name, addr, { connectTimeoutMs: params.get('connect_timeout') * 1000 })
    backends.set(name, b)
    return b
  }
  const via = `1.1 ${model.identity ?? hostname()} (caching-router)`
  const policy = model.policy
  policy.attach?.({
    ban(expression) {
      try {
        bans.prune(store.oldestBanSeq())
        bans.addExpression(expression)
        return undefined
      } catch (err) {
        return (err as Error).message
      }
    },
    // std.log text may carry request bytes (a tab, obs-text): escaped as varnishncsa would.
    log: (message) => logger.info(escapeLogValue(message)),
  })
  let xid = 1000
  const nextXid = () => ++xid

  const responder = new Responder({ policy, counters, via })
  const fetcher = new Fetcher({ store, counters, params, policy, backends: backendOf, logger, via, nextXid }, responder)

  const onRequest = (req: Http1Request, res: Http1Response) => {
    try {
      handle(req, res)
    } catch (err) {
      // Our bug, not the client's: log it, answer like varnishd's vcl_synth, keep serving.
      logger.error(`request failed: ${(err as Error).stack}`)
      if (!res.headersSent) res.send(503, ['Content-Type', 'text/html; charset=utf-8'], guruMeditation(503, 'Internal error', 0))
      else res.destroy()
    }
  }

  // A VCL `return (restart)` runs dispatch again. The closure is made here, not inline in
  // handle: there it would put r (and with it the VCL's per-request state) into the context
  // that handle's other closures (log, writeLog) share and keep alive past the request. Under
  // wrk every request's VCL state then survived scavenges into old space (--trace-gc: ~3 MB
  // promoted per scavenge, a mark-compact a second), about 5 us of GC per 1 KiB hit.
  const restarter = (r: ReqObj, req: Http1Request, res: Http1Response, log: AccessLogFn) => () => dispatch(r, req, res, log)

  const handle = (req: Http1Request, res: Http1Response) => {
    counters.client_req++
    counters.s_req++
    const headers = req.headers
    const expect = appendForwardedFor(headers, req.remoteAddress)
    // Origin-form (the usual request) starts with '/': nothing to look at.
    const url = req.target.charCodeAt(0) === 0x2f ? req.target : targetUrl(req.target, headers)
    const r: ReqObj = {
      method: req.method,
      url: url ?? req.target,
      proto: `HTTP/${req.version}`,
      headers,
      backendHint: model.defaultBackend,
      xid: nextXid(),
      clientIp: req.remoteAddress,
      serverIp: req.localAddress,
      hashAlwaysMiss: false,
      hashIgnoreBusy: false,
    }
    // One access line per response, with the last handling (a VCL restart may log again).
    // `answered`: the connection itself answered the client (a request body it refused), so
    // the line is written now with that status; no 'finish' will come.
    // A response still going when dispatch returns is logged on its 'finish' (see below).
    let handling = ''
    const log = (h: string, answered?: number) => {
      handling = h
      if (answered !== undefined) {
        res.statusCode = answered
        writeLog(h)
      } else if (res.finished) writeLog(h)
    }
    let logged = false
    const writeLog = (handling: string) => {
      if (logged) return
      logged = true
      counters.s_resp_bodybytes += res.bytesWritten
      access.write(
        ncsaLine(
          {
            client: req.remoteAddress,
            method: req.method,
            url: url ?? req.target,
            proto: `HTTP/${req.version}`,
            headers,
            status: res.statusCode,
            bytes: res.bytesWritten,
            handling,
          },
          model.logHandling ?? false,
        ),
      )
    }
    // A request-target no backend can be asked for (undici sends origin- and absolute-form
    // only): an origin answers it with 400 (RFC 9112 §3.2), so do we.
    if (url === undefined) {
      counters.client_req_400++
      req.keepAlive = false
      res.send(400, [], undefined, 'Bad Request')
      log('synth')
      return
    }
    if (expect !== undefined && !expectContinue(expect, req, res, counters)) {
      log('synth')
      return
    }
    if (policy.done !== undefined) r.restart = restarter(r, req, res, log)
    try {
      dispatch(r, req, res, log)
    } finally {
      // Most hits are answered before dispatch returns: logged and released now, without
      // listeners. Otherwise one 'finish' and one 'close' listener do both.
      if (res.finished) {
        if (handling !== '') writeLog(handling)
        policy.done?.(r)
      } else whenDone(r, res, () => handling !== '' && writeLog(handling))
    }
  }

  const whenDone = (r: ReqObj, res: Http1Response, writeLog: () => void) => {
    const onFinish = () => {
      res.off('close', onClose)
      writeLog()
      policy.done?.(r)
    }
    const onClose = () => {
      res.off('finish', onFinish)
      policy.done?.(r)
    }
    res.once('finish', onFinish)
    res.once('close', onClose)
  }

  /** vcl_recv and what it chose; again on a VCL `return (restart)`. */
  const dispatch = (r: ReqObj, req: Http1Request, res: Http1Response, log: AccessLogFn) => {
    const action = policy.recv(r)
    switch (action) {
      case 'synth':
        log('synth')
        return synth(r, res, r.synthStatus ?? 503, r.synthReason)
      case 'pipe':
        return pipe(r, req, res, log)
      case 'purge': {
        const n = store.purge(policy.hash(r))
        counters.n_purges++
        counters.n_obj_purged += n
        log('synth')
        const next = policy.purge?.(r)
        if (next === 'restart') return responder.restart(r, res)
        if (next === 'synth') return synth(r, res, r.synthStatus ?? 200, r.synthReason)
        return synth(r, res, 200, 'Purged')
      }
      case 'pass':
        counters.s_pass++
        log('pass')
        return pass(r, req, res, log)
      default:
        fetcher.lookup(r, res, req.socket, log)
    }
  }

  const pass = (r: ReqObj, req: Http1Request, res: Http1Response, log: AccessLogFn) => {
    const next = policy.pass(r)
    if (next === 'restart') return responder.restart(r, res)
    if (next === 'synth') return synth(r, res, r.synthStatus ?? 503, r.synthReason)
    const bereq = fetcher.bereqOf(r, r.method, false, true)
    const body = req.hasBody ? req.body : undefined
    const clientFailed = (err: Error) => {
      // The client's fault, not the backend's. The connection answered a body it could not read
      // (400, 408) itself and closes; a client that left mid-body got nothing to log.
      logger.info(`client error: request body: ${err.message}`, { xid: r.xid })
      if (err instanceof Http1ParseError) log('pass', err.status)
    }
    fetcher.passFetch(r, bereq, body, res, req.socket, clientFailed, (status, beresp) => {
      // RFC 9111 §4.4: a successful unsafe request invalidates what we stored for its URL,
      // and for Location / Content-Location when they name the same host.
      if (SAFE.has(r.method) || status < 200 || status >= 400) return
      store.purge(policy.hash(r))
      for (const name of ['location', 'content-location']) {
        const target = getHeader(beresp, name)
        const path = target === undefined ? undefined : sameOriginPath(target, getHeader(r.headers, 'host'))
        if (path !== undefined) store.purge(policy.hash({ ...r, url: path }))
      }
    })
  }

  const pipe = (r: ReqObj, req: Http1Request, res: Http1Response, log: AccessLogFn) => {
    const xid = nextXid()
    const bereq: BereqObj = {
      method: r.method,
      url: r.url,
      proto: r.proto,
      // varnishd's cnt_pipe adds X-Varnish to the piped request too, before vcl_pipe.
      headers: r.headers.concat('X-Varnish', String(xid)),
      backend: r.backendHint,
      uncacheable: true,
      xid,
      isBgfetch: false,
      bodyUnset: false,
      policyState: r.policyState,
    }
    if (policy.pipe(r, bereq) === 'synth') return synth(r, res, r.synthStatus ?? 503, r.synthReason)
    const backend = backendOf(bereq.backend)
    if (!backend) return synth(r, res, 503, 'Backend fetch failed')
    counters.s_pipe++
    res.statusCode = 101
    pipeTo(
      backend,
      res,
      { method: bereq.method, url: bereq.url, headers: bereq.headers, upgrade: req.upgrade },
      {
        timeoutMs: params.get('pipe_timeout') * 1000,
        logger,
        done: (bytes) => {
          res.bytesWritten = bytes
          log('pipe')
        },
      },
    )
  }

  const synth = (r: ReqObj, res: Http1Response, status: number, reason?: string) => {
    responder.synth(r, res, status, reason)
  }

  const servers: Http1Server[] = model.listen.map((l) =>
    createHttp1Server({
      onRequest,
      proxyProtocol: l.proxy,
      // As varnishd bounds a request head: http_req_hdr_len each field line (not the request
      // line, which only http_req_size bounds), http_req_size the head, and http_max_hdr the
      // lines including the five the request line takes (method, URL, protocol and two more).
      limits: {
        maxRequestLineBytes: params.get('http_req_size'),
        maxFieldLineBytes: params.get('http_req_hdr_len'),
        maxHeadBytes: params.get('http_req_size'),
        maxHeaderCount: params.get('http_max_hdr') - REQUEST_LINE_HDRS,
      },
      keepAliveTimeoutMs: params.get('timeout_idle') * 1000,
      onClientError() {
        counters.client_req_400++
      },
      // The limit follows RLIMIT_NOFILE (common's default); past it a client is closed at accept.
      onLimit(limit, refused) {
        logger.warn(`connection limit ${limit} reached (RLIMIT_NOFILE): ${refused} connection(s) refused`)
      },
    }),
  )

  let closing: Promise<void> | undefined
  return {
    counters,
    store,
    params,
    bans,
    adminAddress: undefined,
    async listen() {
      for (const name of new Set([model.defaultBackend, ...Object.keys(model.backends)])) {
        if (name !== '' && !backendOf(name)) throw new StartupError(`backend "${name}" is not defined`)
      }
      const bound: HostPort[] = []
      for (const s of servers) {
        const i = servers.indexOf(s)
        const addr = await s.listen((model.listen[i] as ListenSpec).address)
        bound.push(addr)
        logger.info(`listening on ${formatAddress(addr)}${(model.listen[i] as ListenSpec).proxy ? ' (PROXY)' : ''}`)
      }
      const list = [...backends.values()].map((b) => `${b.name} -> ${formatAddress(b.address)}`).join(', ')
      logger.info(`backends: ${list}; storage ${model.storageBytes} bytes`)
      if (admin && model.admin) this.adminAddress = await admin.listen(model.admin.address)
      return bound
    },
    async reload() {
      if (model.vcl === undefined || model.vclFile === undefined) throw new StartupError('nothing to reload: started without -f')
      const program = await model.vcl.reload(model.vclFile)
      logger.info(`SIGHUP: VCL ${program.name} from ${model.vclFile} now active`)
    },
    close({ drainTimeoutMs = 10_000 } = {}) {
      closing ??= (async () => {
        await admin?.close()
        await Promise.all(servers.map((s) => s.close({ drainTimeoutMs })))
        model.vcl?.close()
        store.close()
        await Promise.all([...backends.values()].map((b) => b.close()))
      })()
      return closing
    },
  }
}

/**
 * varnishd appends client.ip to X-Forwarded-For before vcl_recv (one field, comma-joined).
 * The same pass finds the first Expect field (varnishd reads only the first), so the usual
 * request costs no second scan; undefined when there is none.
 */
function appendForwardedFor(headers: string[], ip: string): string | undefined {
  let expect: string | undefined
  let forwarded = -1
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    if (name.length === 15 && forwarded === -1 && name.toLowerCase() === 'x-forwarded-for') forwarded = i + 1
    else if (name.length === 6 && expect === undefined && name.toLowerCase() === 'expect') expect = headers[i + 1] as string
  }
  if (forwarded === -1) headers.push('X-Forwarded-For', ip)
  else headers[forwarded] = `${headers[forwarded]}, ${ip}`
  return expect
}

/**
 * varnishd's http1_dissect, before vcl_recv: an expectation other than `100-continue` gets a
 * bare 417 and the connection closed (RFC 9110 §10.1.1 lets a server refuse one it does not
 * support); `100-continue` is answered with `100 Continue` on HTTP/1.1 whatever the method,
 * unless more bytes (the body) came with the head, and the field is removed so neither VCL
 * nor a backend sees it. False when refused.
 */
function expectContinue(expect: string, req: Http1Request, res: Http1Response, counters: Counters): boolean {
  if (expect.toLowerCase() !== '100-continue') {
    counters.client_req_417++
    req.keepAlive = false
    res.send(417, [], undefined, 'Expectation Failed')
    return false
  }
  const headers = req.headers
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    const name = headers[i] as string
    if (name.length === 6 && name.toLowerCase() === 'expect') headers.splice(i, 2)
  }
  if (req.version === '1.1' && !req.followedByBytes) req.socket.write('HTTP/1.1 100 Continue\r\n\r\n')
  return true
}

/**
 * A request-target that is not origin-form, as varnishd's http1_dissect takes it: absolute-form
 * `http://authority/path` (scheme in any case) becomes `/path`, its authority the only Host
 * (RFC 9112 §3.2.2); one without a path is kept whole. `*` (OPTIONS) is kept. Undefined for
 * anything else (`GET a`), which no backend request can carry.
 */
function targetUrl(target: string, headers: string[]): string | undefined {
  if (target === '*') return target
  const scheme = target.slice(0, 8).toLowerCase()
  if (scheme.startsWith('https://')) return target
  if (!scheme.startsWith('http://')) return undefined
  const slash = target.indexOf('/', 7)
  if (slash === -1) return target
  removeHeader(headers, 'host')
  headers.push('Host', target.slice(7, slash))
  return target.slice(slash)
}

/** A path when `target` is relative or names `host` over http; undefined for another origin. */
function sameOriginPath(target: string, host: string | undefined): string | undefined {
  if (target.startsWith('/') && !target.startsWith('//')) return target
  try {
    const u = new URL(target)
    if (u.protocol === 'http:' && host !== undefined && u.host === host.toLowerCase()) return u.pathname + u.search
  } catch {
    return undefined
  }
  return undefined
}

export { guruMeditation }
