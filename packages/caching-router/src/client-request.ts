import { type AccessLog, getHeader, Http1ParseError, type Http1Request, type Http1Response, type HistogramByLabel, type Logger } from '@edgestack/common'
import { connectionNamed } from './backend-fetch.js'
import type { Counters } from './counters.js'
import type { EsiIncluder } from './esi/esi-deliver.js'
import type { EsiInclude } from './esi/esi-program.js'
import { includeRequest } from './esi/esi-request.js'
import { normalizeAcceptEncoding } from './gzip/accept-encoding.js'
import { acceptsBrotli } from './gzip/brotli-copy.js'
import { asResponse, type FragmentResponse } from './esi/fragment-response.js'
import { type FetchDeps, lookup } from './lookup.js'
import type { RouterModel } from './config/model.js'
import { type NcsaRecord, ncsaLine } from './ncsa.js'
import { compileNcsaFormat } from './ncsa-format.js'
import type { Params } from './params.js'
import { passFetch } from './pass-fetch.js'
import { pipeTo } from './pipe.js'
import type { BereqObj, Policy, ReqObj } from './policy.js'
import { appendForwardedFor, expectContinue, sameOriginPath, targetUrl } from './request-head.js'
import type { Responder } from './respond.js'
import type { CacheStore } from './store.js'
import { guruMeditation } from './synth.js'
import { endRequestTx, headBytes, realTime, requestTx, sessionTx, type Tx, type TxLog } from './vsl-records.js'

const BOGO_IP = '0.0.0.0'

export interface ClientRequestDeps {
  policy: Policy
  counters: Counters
  store: CacheStore
  params: Params
  logger: Logger
  access: AccessLog
  /** Append varnishncsa's `%{Varnish:handling}x` to access lines. */
  logHandling: boolean
  /** varnishncsa's -F and -j instead of its default format. */
  accessFormat: RouterModel['accessFormat']
  responder: Responder
  /** What the lookup, fills and passes share. */
  fetch: FetchDeps
  nextXid(): number
  /** `-n`'s log: each session's and client request's records. */
  txLog: TxLog
  /** Seconds from the request's head to its response's last byte, by handling. */
  latency: HistogramByLabel
}

/** Writes the request's access line once, with varnishncsa's handling; see `handle`. */
type AccessLogFn = (handling: string, answered?: number) => void

/** Methods after whose success RFC 9111 §4.4 says the stored responses are invalid. */
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

/**
 * varnishd's client request state machine (cache_req_fsm.c) up to the lookup: the head as
 * varnishd takes it, vcl_recv and what it chose (synth, pipe, purge, pass, or the lookup in
 * lookup.ts), VCL restarts, and one access line per response.
 */
export function createClientRequestHandler(d: ClientRequestDeps): (req: Http1Request, res: Http1Response) => void {
  const { policy, counters, store, params, logger, access, responder, fetch, latency } = d
  const format = d.accessFormat ? compileNcsaFormat(d.accessFormat.format, d.accessFormat.json) : undefined
  const gzipSupport = () => params.get('http_gzip_support') === 1

  // A VCL `return (restart)` runs dispatch again. The closure is made here, not inline in
  // handle: there it would put r (and with it the VCL's per-request state) into the context
  // that handle's other closures (log, writeLog) share and keep alive past the request. Under
  // wrk every request's VCL state then survived scavenges into old space (--trace-gc: ~3 MB
  // promoted per scavenge, a mark-compact a second), about 5 us of GC per 1 KiB hit.
  // Each connection's session transaction, while it is open (only with -n's log).
  const sessions = new WeakMap<object, Tx>()
  const listenName = (port: number | undefined) => d.txLog.listenNames.get(port || 0) ?? 'a0'
  const startRequestTx = (vsl: NonNullable<TxLog['log']>, req: Http1Request, r: ReqObj, startedAt: number): Tx => {
    const sess = sessions.get(req.socket)
    sess?.link('req', r.xid, 'rxreq')
    return requestTx(vsl, r.xid, sess?.xid ?? 0, realTime(startedAt), {
      clientIp: r.clientIp,
      clientPort: req.remotePort || 0,
      listenName: listenName(req.localPort),
      method: req.method,
      url: req.target,
      proto: r.proto,
      headers: r.headers,
    })
  }

  const restarter = (r: ReqObj, req: Http1Request | undefined, res: Http1Response, log: AccessLogFn) => () => dispatch(r, req, res, log)

  const handle = (req: Http1Request, res: Http1Response) => {
    counters.client_req++
    counters.s_req++
    const vsl = d.txLog.log
    // varnishd's session takes a vxid before its first request (cache_session.c), so the
    // X-Varnish numbers of a new connection's requests skip one, as varnishtest expects.
    if (req.connectionRequests === 1) {
      const sxid = d.nextXid()
      if (vsl !== undefined) sessions.set(req.socket, sessionTx(vsl, sxid, req.socket, req, listenName(req.localPort)))
    }
    const headers = req.headers
    // A Unix-socket listener has no peer address: varnishd's bogo_ip, 0.0.0.0 port 0, stands
    // for it in client.ip, server.ip and X-Forwarded-For (cache_session.c).
    const startedAt = performance.now()
    const clientIp = req.remoteAddress || BOGO_IP
    // ReqAcct's head bytes: the head as received, before X-Forwarded-For is appended.
    const reqHead = vsl === undefined ? 0 : headBytes(req.method, req.target, req.version, headers)
    const expect = appendForwardedFor(headers, clientIp)
    // Origin-form (the usual request) starts with '/': nothing to look at.
    const url = req.target.charCodeAt(0) === 0x2f ? req.target : targetUrl(req.target, headers)
    const r: ReqObj = {
      method: req.method,
      url: url ?? req.target,
      proto: `HTTP/${req.version}`,
      headers,
      connectionNamed: connectionNamed(headers),
      xid: d.nextXid(),
      clientIp,
      serverIp: req.localAddress || BOGO_IP,
      clientPort: req.remotePort,
      serverPort: req.localPort,
      // remote.ip and local.ip: the connection's own ends (a PROXY header's are client.ip and
      // server.ip); an HTTP/2 request's socket is its stream, so its session names them.
      socket: req.viaProxy ?? req.socket,
      hashAlwaysMiss: false,
      hashIgnoreBusy: false,
      http0: headers,
      vsl: undefined as Tx | undefined,
    }
    if (vsl !== undefined) r.vsl = startRequestTx(vsl, req, r, startedAt)
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
      const seconds = (performance.now() - startedAt) / 1000
      latency.observe(handling, seconds)
      const record: NcsaRecord = {
        client: clientIp,
        method: req.method,
        url: url ?? req.target,
        proto: `HTTP/${req.version}`,
        headers,
        status: res.statusCode,
        bytes: res.bytesWritten,
        handling,
      }
      access.write(format ? format(record, { seconds, xid: r.xid }) : ncsaLine(record, d.logHandling))
      if (r.vsl !== undefined) endRequestTx(r.vsl, res.head, res.statusCode, { reqHead, reqBody: req.contentLength ?? 0, respHead: res.headBytes, respBody: res.bytesWritten })
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
    r.restart = restarter(r, req, res, log)
    try {
      dispatch(r, req, res, log)
    } finally {
      // Most hits are answered before dispatch returns: logged and released now, without
      // listeners. Otherwise one 'finish' and one 'close' listener do both.
      if (res.finished) {
        if (handling !== '') writeLog(handling)
        r.vsl?.end()
        policy.done(r)
      } else whenDone(r, res, () => handling !== '' && writeLog(handling))
    }
  }

  const whenDone = (r: ReqObj, res: Http1Response, writeLog: () => void) => {
    const onFinish = () => {
      res.off('close', onClose)
      writeLog()
      r.vsl?.end()
      policy.done(r)
    }
    const onClose = () => {
      res.off('finish', onFinish)
      // The client left before the response was through: the transaction ends as it stands.
      r.vsl?.end()
      policy.done(r)
    }
    res.once('finish', onFinish)
    res.once('close', onClose)
  }

  /**
   * vcl_recv and what it chose; again on a VCL `return (restart)`. `req` is undefined for an
   * ESI include, which has no connection of its own.
   */
  const dispatch = (r: ReqObj, req: Http1Request | undefined, res: Http1Response, log: AccessLogFn) => {
    const action = policy.recv(r)
    switch (action) {
      case 'synth':
        log('synth')
        return synth(r, res, r.synthStatus ?? 503, r.synthReason)
      case 'pipe':
        // cache_req_fsm.c cnt_recv: "vcl_recv {} returns pipe for ESI included object. Doing pass."
        if (req === undefined) return pass(r, req, res, log)
        // cache_req_fsm.c cnt_recv: "vcl_recv{} returns pipe for HTTP/2 request. Doing pass."
        if (req.version === '2.0') {
          logger.info('vcl_recv{} returns pipe for HTTP/2 request.  Doing pass.', { xid: r.xid })
          counters.s_pass++
          log('pass')
          return pass(r, req, res, log)
        }
        return pipe(r, req, res, log)
      case 'purge': {
        const n = store.purge(policy.hash(r))
        counters.n_purges++
        counters.n_obj_purged += n
        log('synth')
        const next = policy.purge(r)
        if (next === 'restart') return responder.restart(r, res)
        return synth(r, res, r.synthStatus ?? 200, r.synthReason)
      }
      case 'pass':
        counters.s_pass++
        log('pass')
        return pass(r, req, res, log)
      default:
        // --brotli: read before the normalization leaves only gzip (or nothing) for the lookup.
        if (fetch.brotli === true) r.takesBrotli = acceptsBrotli(r.headers)
        if (gzipSupport()) r.headers = normalizeAcceptEncoding(r.headers)
        lookup(fetch, r, res, res.socket, log)
    }
  }

  const pass = (r: ReqObj, req: Http1Request | undefined, res: Http1Response, log: AccessLogFn) => {
    const next = policy.pass(r)
    if (next === 'restart') return responder.restart(r, res)
    if (next === 'synth') return synth(r, res, r.synthStatus ?? 503, r.synthReason)
    const bereq = fetch.fetches.bereqOf(r, r.method, false, true)
    const body = req?.hasBody ? req.body : undefined
    const clientFailed = (err: Error) => {
      // The client's fault, not the backend's. The connection answered a body it could not read
      // (400, 408) itself and closes; a client that left mid-body got nothing to log.
      logger.info(`client error: request body: ${err.message}`, { xid: r.xid })
      if (err instanceof Http1ParseError) log('pass', err.status)
    }
    passFetch(fetch, r, bereq, body, res, res.socket, clientFailed, (status, beresp) => {
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
    const xid = d.nextXid()
    const bereq: BereqObj = {
      method: r.method,
      url: r.url,
      proto: r.proto,
      // varnishd's cnt_pipe adds X-Varnish to the piped request too, before vcl_pipe.
      headers: r.headers.concat('X-Varnish', String(xid)),
      // Picked by the policy's vcl_pipe step: a director resolves when the backend side starts.
      backend: undefined,
      uncacheable: true,
      xid,
      isBgfetch: false,
      bodyUnset: false,
      policyState: r.policyState,
    }
    if (policy.pipe(r, bereq) === 'synth') return synth(r, res, r.synthStatus ?? 503, r.synthReason)
    if (bereq.backend === undefined) return synth(r, res, 503, 'Backend fetch failed')
    counters.s_pipe++
    res.statusCode = 101
    pipeTo(
      bereq.backend,
      res,
      { method: bereq.method, url: bereq.url, headers: bereq.headers, upgrade: req.upgrade },
      {
        timeoutMs: params.get('pipe_timeout') * 1000,
        logger,
        xid: r.xid,
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

  // An ESI include: a request of its own through the whole VCL (cache_esi_deliver.c
  // ved_include), answered into the page's FragmentResponse, never logged as a client's.
  const noLog: AccessLogFn = () => {}
  responder.esi = {
    include(parent: ReqObj, inc: EsiInclude, out: FragmentResponse) {
      // MAIN.esi_req: one a sub-request, past the max_esi_depth check (ved_include).
      counters.esi_req++
      const r = includeRequest(parent, inc, d.nextXid(), false)
      const res = asResponse(out)
      r.restart = restarter(r, undefined, res, noLog)
      try {
        dispatch(r, undefined, res, noLog)
      } catch (err) {
        logger.error(`ESI include failed: ${(err as Error).stack}`, { xid: r.xid })
        out.destroy()
      } finally {
        if (out.finished) policy.done(r)
        else whenDone(r, res, noop)
      }
    },
    maxDepth: () => params.get('max_esi_depth'),
    onErrorFeature: () => params.feature('esi_include_onerror'),
  } satisfies EsiIncluder

  return (req, res) => {
    try {
      handle(req, res)
    } catch (err) {
      // Our bug, not the client's: log it, answer like varnishd's vcl_synth, keep serving.
      logger.error(`request failed: ${(err as Error).stack}`)
      if (!res.headersSent) res.send(503, ['Content-Type', 'text/html; charset=utf-8'], guruMeditation(503, 'Internal error', 0))
      else res.destroy()
    }
  }
}

const noop = () => {}
