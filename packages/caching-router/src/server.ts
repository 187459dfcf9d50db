import { unlink } from 'node:fs/promises'
import { hostname } from 'node:os'
import {
  type AccessLog,
  createHttp1Server,
  escapeLogValue,
  formatAddress,
  HistogramByLabel,
  type HostPort,
  type Http1Server,
  type Logger,
  StartupError,
} from '@edgestack/common'
import { type AdminServer, type ChildCli, createAdminServer } from './admin.js'
import { BackendPools } from './backend-pools.js'
import { BanList } from './bans.js'
import { createClientRequestHandler } from './client-request.js'
import type { RouterModel } from './config/model.js'
import type { CacheObject } from './cache-object.js'
import { Counters } from './counters.js'
import { makeBrotliCopy } from './gzip/brotli-copy.js'
import { createH2Gateway } from './h2/gateway.js'
import { BackendFetch } from './backend-fetch.js'
import type { FetchDeps } from './lookup.js'
import { Params } from './params.js'
import { Responder } from './respond.js'
import { readSecret } from './secret-file.js'
import { CacheStore } from './store.js'
import { VclPolicy } from './vcl-policy.js'
import { VclRegistry } from './vcl/index.js'
import { TxLog } from './vsl-records.js'
import { PeerCache } from './workers/peer-cache.js'

export interface CachingRouter {
  /** Compiles the boot VCL (runs vcl_init, starts its probes), reads `-S`, then binds; the TCP addresses bound. */
  listen(): Promise<HostPort[]>
  close(opts?: { drainTimeoutMs?: number }): Promise<void>
  readonly counters: Counters
  /** The request-duration histograms, by handling (hit, miss, pass, pipe, synth). */
  readonly latency: HistogramByLabel
  readonly store: CacheStore
  readonly params: Params
  readonly bans: BanList
  /** The loaded VCLs (the manager's with -d/-M): what a worker's CLI commands act on, and the VBE counters. */
  readonly vcl: VclRegistry
  /** The admin CLI's bound address, once listening. */
  adminAddress: HostPort | undefined
  /** SIGHUP: re-read `-f` and use it; a file that does not compile changes nothing. */
  reload(): Promise<void>
  /** What the admin CLI asks the serving side (a manager's CLI too). */
  readonly cli: ChildCli
  /** `--workers N`: this worker's link to the others' caches. */
  readonly peers: PeerCache | undefined
  /** Where transaction records go: `-n`'s log once its segment exists (vsm/shm.ts sets it). */
  readonly txLog: TxLog
}

export interface RouterOptions {
  /** Milliseconds since the epoch, for every TTL, grace and Age decision and VCL's `now`. */
  clock?: () => number
  /**
   * A manager's loaded VCLs (-d, -M): used as they are, never closed by the router; without
   * it the router compiles the model's VCL into a registry of its own.
   */
  vcl?: VclRegistry
  /**
   * A manager's parameters (-d, -M): read as they are, so a `param.set` on the manager's CLI
   * reaches the running router as it reaches varnishd's child; without it the model's `-p`.
   */
  params?: Params
  /**
   * `--workers N`: this router is worker `index` of `count`, one cache across them
   * (workers/peer-cache.ts); each store holds a `count`th of `-s`, so they bound the total.
   */
  worker?: { index: number; count: number }
}

/** varnishd's HTTP_HDR_FIRST: the header slots the request line takes out of http_max_hdr. */
const REQUEST_LINE_HDRS = 5

/**
 * varnishd's job: a caching reverse proxy whose every decision is VCL's (the model's `-f`
 * file, or the text `-b` and the article's flags stand for, each with builtin.vcl appended).
 */
/** A log line a second at most for connections refused at the descriptor-based limit. */
function refusedLogger(logger: Logger): (why: 'reused' | 'limit' | Error) => void {
  let last = 0
  return (why) => {
    const now = Date.now()
    if (now - last < 1000) return
    last = now
    if (why instanceof Error) logger.error(`accept failed: ${why.message}`)
    else logger.warn('connection limit reached (RLIMIT_NOFILE, two descriptors a client): new connections refused')
  }
}

export function createCachingRouter(model: RouterModel, logger: Logger, access: AccessLog, opts: RouterOptions = {}): CachingRouter {
  const clock = opts.clock ?? Date.now
  const params = opts.params ?? new Params()
  if (opts.params === undefined) for (const [name, value] of model.params) params.set(name, value)
  const counters = new Counters()
  const latency = new HistogramByLabel('handling')
  const workers = opts.worker
  const store = new CacheStore(workers === undefined ? model.storageBytes : Math.floor(model.storageBytes / workers.count), counters, clock)
  const bans = new BanList(counters, clock, () => params.regexLimits)
  store.setBans(bans)
  const peers =
    workers === undefined
      ? undefined
      : new PeerCache(workers.index, workers.count, store, clock, {
          ban(expression) {
            bans.prune(store.oldestBanSeq())
            bans.addExpression(expression)
          },
          // Each worker makes the brotli copy of the objects it holds, copies included.
          ...(model.brotli ? { copied: (obj: CacheObject) => makeBrotliCopy(obj, store) } : {}),
        })
  const pools = new BackendPools(
    () => params.get('connect_timeout') * 1000,
    () => params.get('backend_idle_timeout') * 1000,
    () => params.get('http_resp_size'),
  )
  const ownVcl = opts.vcl === undefined
  const vcl = opts.vcl ?? new VclRegistry()
  // A discarded VCL whose last request is done (the manager's too): its backends' pools close.
  const offCold = vcl.onCold((program) => void pools.release(program.compiled.backends.values()))
  const via = `1.1 ${model.identity ?? hostname()} (caching-router)`
  const policy = new VclPolicy(vcl, clock, () => params.get('max_restarts'))
  policy.attach({
    ban(expression) {
      try {
        bans.prune(store.oldestBanSeq())
        bans.addExpression(expression)
        peers?.ban(expression)
        return undefined
      } catch (err) {
        return (err as Error).message
      }
    },
    // std.log text may carry request bytes (a tab, obs-text): escaped as varnishncsa would.
    log: (message) => logger.info(escapeLogValue(message)),
    xkeyPurge: (keys, soft) => store.xkeyPurge(keys, soft, clock()),
    regexLimits: () => params.regexLimits,
    gzipSupport: () => params.gzip.support,
  })
  let xid = 1000
  const nextXid = () => ++xid
  const txLog = new TxLog()
  // Each -a as bound: a TCP address, or a Unix socket's path.
  let bound: Array<HostPort | string> = []
  const cli: ChildCli = {
    counters,
    bans,
    oldestBanSeq: () => store.oldestBanSeq(),
    extraStats: () => ({ SMA_g_bytes: store.bytes, SMA_g_space: store.maxBytes - store.bytes }),
    // cache_acceptor.c ccf_listen_address: a Unix socket is `NAME PATH -`.
    listenAddresses: () =>
      bound.map((a, i) => `${model.listen[i]?.name ?? `a${i}`} ${typeof a === 'string' ? `${a} -` : `${a.host} ${a.port}`}\n`).join(''),
    xid(last) {
      if (last !== undefined) xid = last
      return xid
    },
  }

  const responder = new Responder({ policy, counters, via, clock, gzip: () => params.gzip, grew: (obj, bytes) => store.grew(obj, bytes) })
  const fetch: FetchDeps = {
    store,
    counters,
    params,
    policy,
    responder,
    via,
    logger,
    clock,
    storageBytes: () => store.maxBytes,
    fetches: new BackendFetch({ pools, params, counters, logger, nextXid, txLog }),
    peers,
    brotli: model.brotli ?? false,
  }
  const onRequest = createClientRequestHandler({
    policy,
    counters,
    store,
    params,
    logger,
    access,
    logHandling: model.logHandling,
    accessFormat: model.accessFormat,
    responder,
    fetch,
    nextXid,
    txLog,
    latency,
  })

  // HTTP/2 (feature=+http2): its streams go to the same onRequest (src/h2/).
  const h2 = createH2Gateway({ params, onRequest, logger })
  const servers: Http1Server[] = model.listen.map((l) =>
    createHttp1Server({
      onRequest: h2.onRequest,
      onHttp2Preface: h2.preface,
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
      sendTimeoutMs: params.get('idle_send_timeout') * 1000,
      onClientError() {
        counters.client_req_400++
      },
      onAccepted() {
        counters.sess_conn++
        counters.s_sess++
      },
      // The limit follows RLIMIT_NOFILE (the HTTP core's default); past it a client is closed
      // at accept. One line a second at most, however many are refused.
      onRefused: refusedLogger(logger),
    }),
  )

  let admin: AdminServer | undefined
  let closing: Promise<void> | undefined
  return {
    counters,
    latency,
    store,
    params,
    bans,
    peers,
    vcl,
    txLog,
    adminAddress: undefined,
    cli,
    async listen() {
      if (ownVcl) {
        const source = model.vcl.kind === 'file' ? model.vcl.path : { name: model.vcl.name, text: model.vcl.text }
        await vcl.load('boot', source)
        vcl.use('boot')
      }
      const boot = vcl.active as NonNullable<typeof vcl.active>
      const secret = await readSecret(model.admin?.secretFile)
      bound = []
      for (const [i, s] of servers.entries()) {
        const spec = model.listen[i] as RouterModel['listen'][number]
        if ('path' in spec.address) {
          // mgt_acceptor.c: varnishd unlinks whatever is at the path, then binds.
          const path = spec.address.path
          await unlink(path).catch((err: NodeJS.ErrnoException) => {
            if (err.code !== 'ENOENT') throw new StartupError(`-a ${path}: ${err.message}`, { cause: err })
          })
          await s.listenPath(spec.address.path, spec.address.mode)
          bound.push(spec.address.path)
          // A Unix socket's requests have no local port: 0 names it (one such listener's name).
          txLog.listenNames.set(0, spec.name ?? `a${i}`)
          logger.info(`listening on ${spec.address.path}${spec.proxy ? ' (PROXY)' : ''}`)
          continue
        }
        // --workers: a worker thread binds a socket of its own beside the one handed down to
        // worker 0 (SO_REUSEPORT, the manager holds that one so): a thread that dies closes only its own.
        const addr = await s.listen(spec.address, { reusePort: workers !== undefined && workers.index > 0 })
        bound.push(addr)
        txLog.listenNames.set(addr.port, spec.name ?? `a${i}`)
        logger.info(`listening on ${formatAddress(addr)}${spec.proxy ? ' (PROXY)' : ''}`)
      }
      const list = [...boot.compiled.backends.values()].map((b) => `${b.name} -> ${b.path ?? formatAddress({ host: b.host, port: b.port })}`).join(', ')
      logger.info(`backends: ${list}; storage ${store.maxBytes} bytes`)
      for (const note of boot.compiled.regexNotes) logger.warn(note)
      if (model.admin) {
        admin = createAdminServer({ params, logger, secret, vcl, child: () => cli })
        this.adminAddress = await admin.listen(model.admin.address)
      }
      return bound.filter((a) => typeof a !== 'string')
    },
    async reload() {
      if (model.vcl.kind !== 'file') throw new StartupError('nothing to reload: started without -f')
      const program = await vcl.reload(model.vcl.path)
      logger.info(`SIGHUP: VCL ${program.name} from ${model.vcl.path} now active`)
    },
    close({ drainTimeoutMs = 10_000 } = {}) {
      closing ??= (async () => {
        await admin?.close()
        await Promise.all([...servers.map((s) => s.close({ drainTimeoutMs })), h2.close(drainTimeoutMs)])
        offCold()
        if (ownVcl) vcl.close()
        store.close()
        await pools.close()
      })()
      return closing
    },
  }
}
