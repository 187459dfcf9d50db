import type { Socket } from 'node:net'
import type { UpstreamRequest } from './proxy-request.js'
import type { Lease, Peer, Upstream } from './upstream.js'
import { type UpstreamHead, UpstreamHeadParser } from './upstream-head.js'

/** nginx's NGX_HTTP_UPSTREAM_FT_* for a try that got no usable head. */
export type TryFailure = 'error' | 'timeout' | 'invalid_header'

export interface TryTimes {
  start: number
  connected?: number
  header?: number
}

export interface Answer {
  head: UpstreamHead
  lease: Lease
  /** Bytes read past the head: the start of the body. */
  rest: Buffer
}

export interface ExchangeLimits {
  connectMs: number
  readMs: number
  sendMs: number
  /** proxy_buffer_size: the most the head may take. */
  headMax: number
}

/**
 * One try at one peer (ngx_http_upstream_connect .. process_header): a connection (cached or
 * new), the request written, the head read within proxy_read_timeout between reads and
 * proxy_buffer_size in all. Interim 1xx answers are skipped (RFC 9110 §15.2; nginx 1.22
 * would send the 100 as the final answer). A cached connection that the backend closed
 * unanswered is replaced by a new one, as nginx does without counting a try.
 */
export async function exchange(up: Upstream, peer: Peer, req: UpstreamRequest, limits: ExchangeLimits, times: TryTimes, signal: AbortSignal): Promise<Answer | TryFailure> {
  for (;;) {
    let lease: Lease
    try {
      lease = await up.connect(peer, limits.connectMs)
    } catch (err) {
      return (err as { code?: string }).code === 'ETIMEDOUT' ? 'timeout' : 'error'
    }
    times.connected = Date.now()
    // The client left: the try ends now (its socket closes, read as an error by the caller).
    const drop = () => lease.socket.destroy()
    if (signal.aborted) drop()
    signal.addEventListener('abort', drop, { once: true })
    const r = await readHead(lease.socket, req, limits)
    signal.removeEventListener('abort', drop)
    if (r === 'closed-unanswered' && lease.reused) continue
    if (typeof r === 'string') {
      lease.socket.destroy()
      return r === 'closed-unanswered' ? 'error' : r
    }
    times.header = Date.now()
    return { head: r.head, rest: r.rest, lease }
  }
}

function readHead(socket: Socket, req: UpstreamRequest, limits: ExchangeLimits): Promise<{ head: UpstreamHead; rest: Buffer } | TryFailure | 'closed-unanswered'> {
  return new Promise((resolve) => {
    const parser = new UpstreamHeadParser(limits.headMax)
    let got = false
    let over = false
    let sendTimer: NodeJS.Timeout | undefined
    const done = (v: { head: UpstreamHead; rest: Buffer } | TryFailure | 'closed-unanswered') => {
      if (over) return
      over = true
      clearTimeout(sendTimer)
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('close', onEnd)
      socket.off('error', onError)
      socket.off('timeout', onTimeout)
      socket.setTimeout(0)
      socket.pause()
      resolve(v)
    }
    const onData = (c: Buffer) => {
      got = true
      let h = parser.push(c)
      for (;;) {
        if (h === 'more') return
        if (typeof h === 'string') return done('invalid_header')
        // Interim answers (100 Continue, 103 Early Hints) precede the final one; 101 is final.
        if (h.status >= 100 && h.status < 200 && h.status !== 101) {
          h = parser.next(h.size)
          continue
        }
        return done({ head: h, rest: Buffer.from(parser.buffered.subarray(h.size)) })
      }
    }
    const onEnd = () => done(got ? 'error' : 'closed-unanswered')
    const onError = () => done(got ? 'error' : 'closed-unanswered')
    const onTimeout = () => done('timeout')
    socket.on('data', onData)
    socket.on('end', onEnd)
    socket.on('close', onEnd)
    socket.on('error', onError)
    socket.on('timeout', onTimeout)
    socket.setTimeout(limits.readMs)
    socket.cork()
    socket.write(req.head)
    if (req.body && req.body.length > 0) socket.write(req.body)
    socket.uncork()
    // proxy_send_timeout: a backend that stops taking the request (its window full) times out.
    if (socket.writableLength > 0) {
      sendTimer = setTimeout(() => done('timeout'), limits.sendMs)
      socket.once('drain', () => clearTimeout(sendTimer))
    }
    socket.resume()
  })
}
