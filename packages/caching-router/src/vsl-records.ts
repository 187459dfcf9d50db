import type { Socket } from 'node:net'
import type { VclMethod, VclTrace } from './vcl/index.js'
import { SLT } from './vsm/vsl-tags.js'
import { BACKEND, CLIENT, type VslLog } from './vsm/vsl.js'

/**
 * The router's handle on its child's log (`-n`): `log` is set once the `Log` segment exists,
 * and stays undefined without `-n`, when each call site costs one property read.
 */
export class TxLog {
  log: VslLog | undefined = undefined
  /** `-a NAME=` of the listener on each local port (varnishd's `a0`, `a1`, ...). */
  listenNames = new Map<number, string>()
}

// A getter that does work on each read: read once.
const TIME_ORIGIN = performance.timeOrigin

/** Seconds since the epoch to the microsecond, as varnishd's VTIM_real in Timestamp records. */
function realNow(): number {
  return (TIME_ORIGIN + performance.now()) / 1000
}

/** performance.now() (ms) as realNow() would have read it then. */
export function realTime(perfNowMs: number): number {
  return (TIME_ORIGIN + perfNowMs) / 1000
}

/** The VCL_call names (cache_vcl.c VCL_*_method: the method in capitals). */
const CALL: Record<VclMethod, string> = {
  recv: 'RECV',
  pipe: 'PIPE',
  pass: 'PASS',
  hash: 'HASH',
  purge: 'PURGE',
  hit: 'HIT',
  miss: 'MISS',
  deliver: 'DELIVER',
  synth: 'SYNTH',
  backend_fetch: 'BACKEND_FETCH',
  backend_response: 'BACKEND_RESPONSE',
  backend_error: 'BACKEND_ERROR',
  init: 'INIT',
  fini: 'FINI',
}

/**
 * One transaction's records (a session, a client request or a backend request): written as
 * they happen into the log's buffer, each with this transaction's vxid and its side's marker.
 * `end()` writes End once; nothing is written after it.
 */
export class Tx implements VclTrace {
  readonly #log: VslLog
  readonly #id: number
  readonly xid: number
  readonly #t0: number
  #last: number
  #ended = false

  /** `Begin TYPE PARENT REASON` (`req 1001 rxreq`). */
  constructor(log: VslLog, xid: number, backend: boolean, type: string, parent: number, reason: string, t0 = realNow()) {
    this.#log = log
    this.xid = xid
    this.#id = (xid & 0x3fffffff) + (backend ? BACKEND : CLIENT)
    this.#t0 = t0
    this.#last = t0
    log.start(SLT.Begin, this.#id)
    log.str(type)
    log.str(' ')
    log.int(parent)
    log.str(' ')
    log.str(reason)
    log.finish()
  }

  get ended(): boolean {
    return this.#ended
  }

  rec(tag: number, text: string): void {
    if (!this.#ended) this.#log.write(tag, this.#id, text)
  }

  /** `NAME: VALUE`, a header record, without a string made for it. */
  header(tag: number, name: string, value: string): void {
    if (this.#ended) return
    const log = this.#log
    log.start(tag, this.#id)
    log.str(name)
    log.str(': ')
    log.str(value)
    log.finish()
  }

  /** `text` held for heldRecord (VslLog.hold). */
  hold(text: string): void {
    this.#log.hold(text)
  }

  /** A record of the held text from `from` to `to` (a line of a head), without slicing it. */
  heldRecord(tag: number, from: number, to: number): void {
    if (this.#ended) return
    const log = this.#log
    log.start(tag, this.#id)
    log.held(from, to)
    log.finish()
  }

  /** `Timestamp LABEL: absolute since-begin since-last` (cache_shmlog.c VSLb_ts). */
  timestamp(label: string, t = realNow()): void {
    if (this.#ended) return
    const log = this.#log
    log.start(SLT.Timestamp, this.#id)
    log.str(label)
    log.str(': ')
    log.fixed6(t)
    log.str(' ')
    log.fixed6(t - this.#t0)
    log.str(' ')
    log.fixed6(t - this.#last)
    log.finish()
    this.#last = t
  }

  /** `ReqStart CLIENTIP PORT LISTENER`. */
  reqStart(ip: string, port: number, listener: string): void {
    if (this.#ended) return
    const log = this.#log
    log.start(SLT.ReqStart, this.#id)
    log.str(ip)
    log.str(' ')
    log.int(port)
    log.str(' ')
    log.str(listener)
    log.finish()
  }

  /**
   * `Hit OBJVXID TTL GRACE KEEP` (cache_req_fsm.c cnt_lookup; the TTL left, negative in grace) /
   * `HitMiss OBJVXID TTL` (a hit-for-miss marker sent the request on), in seconds, %.6f.
   */
  hit(tag: number, objXid: number, ttl: number, grace?: number, keep?: number): void {
    if (this.#ended) return
    const log = this.#log
    log.start(tag, this.#id)
    log.int(objXid)
    log.str(' ')
    log.fixed6(ttl)
    if (grace !== undefined && keep !== undefined) {
      log.str(' ')
      log.fixed6(grace)
      log.str(' ')
      log.fixed6(keep)
    }
    log.finish()
  }

  /** A record of whole numbers separated by spaces (ReqAcct, BereqAcct). */
  numbers(tag: number, values: readonly number[]): void {
    if (this.#ended) return
    const log = this.#log
    log.start(tag, this.#id)
    for (let i = 0; i < values.length; i++) {
      if (i > 0) log.str(' ')
      log.int(values[i] as number)
    }
    log.finish()
  }

  call(method: VclMethod, action: string): void {
    this.rec(SLT.VCL_call, CALL[method])
    this.rec(SLT.VCL_return, action)
  }

  vclLog(text: string): void {
    this.rec(SLT.VCL_Log, text)
  }

  vclError(text: string): void {
    this.rec(SLT.VCL_Error, text)
  }

  /** A child transaction: `Link TYPE VXID REASON` (`req 1002 rxreq`, `bereq 1003 fetch`). */
  link(type: 'req' | 'bereq', xid: number, reason: string): void {
    if (this.#ended) return
    const log = this.#log
    log.start(SLT.Link, this.#id)
    log.str(type)
    log.str(' ')
    log.int(xid)
    log.str(' ')
    log.str(reason)
    log.finish()
  }

  end(): void {
    if (this.#ended) return
    this.rec(SLT.End, '')
    this.#ended = true
  }
}

/**
 * A connection's session (cache_session.c, cache_acceptor.c): `Begin sess 0 HTTP/1`, SessOpen
 * with both ends, the listener's name, the time and the descriptor; a Link per request;
 * SessClose and End when the connection closes.
 */
export function sessionTx(log: VslLog, xid: number, socket: Socket, req: SessionPeer, listenName: string): Tx {
  const t0 = realNow()
  const sess = new Tx(log, xid, false, 'sess', 0, 'HTTP/1', t0)
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1
  // A Unix socket's ends: varnishd's bogo_ip, 0.0.0.0 port 0.
  sess.rec(SLT.SessOpen, `${req.remoteAddress || '0.0.0.0'} ${req.remotePort || 0} ${listenName} ${req.localAddress || '0.0.0.0'} ${req.localPort || 0} ${t0.toFixed(6)} ${fd}`)
  socket.once('close', () => {
    // cache_session.c's reasons: the client closed (REM_CLOSE), or we did after a response that said close.
    sess.rec(SLT.SessClose, `${req.keepAlive ? 'REM_CLOSE' : 'RESP_CLOSE'} ${(realNow() - t0).toFixed(3)}`)
    sess.end()
  })
  return sess
}

interface SessionPeer {
  readonly remoteAddress: string
  readonly remotePort: number
  readonly localAddress: string
  readonly localPort: number
  keepAlive: boolean
}

/**
 * A client request's first records (cache_req_fsm.c cnt_recv, http_VSL): Start and Req
 * timestamps, ReqStart, the request line and each field as received (X-Forwarded-For as
 * varnishd appends it).
 */
export function requestTx(log: VslLog, xid: number, parent: number, t0: number, start: RequestStart): Tx {
  const tx = new Tx(log, xid, false, 'req', parent, 'rxreq', t0)
  tx.timestamp('Start', t0)
  tx.timestamp('Req', t0)
  tx.reqStart(start.clientIp, start.clientPort, start.listenName)
  tx.rec(SLT.ReqMethod, start.method)
  tx.rec(SLT.ReqURL, start.url)
  tx.rec(SLT.ReqProtocol, start.proto)
  const h = start.headers
  for (let i = 0; i < h.length; i += 2) tx.header(SLT.ReqHeader, h[i] as string, h[i + 1] as string)
  return tx
}

interface RequestStart {
  clientIp: string
  clientPort: number
  listenName: string
  method: string
  url: string
  proto: string
  headers: readonly string[]
}

/**
 * The bytes of a request head as the client sent it (the request line, each field line, the
 * empty line) for ReqAcct, counted from the parsed head: exact for heads written with one
 * space after each colon, as clients write them.
 */
export function headBytes(method: string, target: string, version: string, headers: readonly string[]): number {
  // "METHOD TARGET HTTP/x.y\r\n" and the final "\r\n".
  let n = method.length + target.length + version.length + 11
  for (let i = 0; i < headers.length; i += 2) n += (headers[i] as string).length + (headers[i + 1] as string).length + 4
  return n
}

/**
 * The response's records from the head as it went to the client (cache_deliver: RespProtocol,
 * RespStatus, RespReason, each RespHeader), then Process and Resp timestamps and ReqAcct
 * (`reqHead reqBody reqTotal respHead respBody respTotal`), then End.
 */
export function endRequestTx(tx: Tx, head: string | undefined, status: number, acct: { reqHead: number; reqBody: number; respHead: number; respBody: number }): void {
  if (tx.ended) return
  if (head !== undefined) respRecords(tx, head)
  else tx.rec(SLT.RespStatus, String(status))
  const t = realNow()
  tx.timestamp('Process', t)
  tx.timestamp('Resp', t)
  tx.numbers(SLT.ReqAcct, [acct.reqHead, acct.reqBody, acct.reqHead + acct.reqBody, acct.respHead, acct.respBody, acct.respHead + acct.respBody])
  tx.end()
}

function respRecords(tx: Tx, head: string): void {
  const eol = head.indexOf('\r\n')
  if (eol === -1) return
  tx.hold(head)
  const sp1 = head.indexOf(' ')
  const sp2 = head.indexOf(' ', sp1 + 1)
  const noReason = sp2 === -1 || sp2 > eol
  tx.heldRecord(SLT.RespProtocol, 0, sp1)
  tx.heldRecord(SLT.RespStatus, sp1 + 1, noReason ? eol : sp2)
  tx.heldRecord(SLT.RespReason, noReason ? eol : sp2 + 1, eol)
  let at = eol + 2
  for (;;) {
    const next = head.indexOf('\r\n', at)
    // The empty line ends the head.
    if (next <= at) return
    tx.heldRecord(SLT.RespHeader, at, next)
    at = next + 2
  }
}

export { realNow }
