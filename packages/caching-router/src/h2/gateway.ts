import type { Socket } from 'node:net'
import type { Http1Request, Http1Response, PeerAddresses } from '@edgestack/common'
import { H2Session, type SessionDeps } from './session.js'
import { upgradeToH2, wantsH2c } from './upgrade.js'

export interface H2Gateway {
  /** The HTTP core's onHttp2Preface: a connection that opened with the preface. */
  preface(socket: Socket, bytes: Buffer, peer: PeerAddresses): void
  /** The HTTP/1 request handler, with `Upgrade: h2c` taken first when +http2 is on. */
  readonly onRequest: (req: Http1Request, res: Http1Response) => void
  /** Server shutdown: GOAWAY to every session; the open streams finish, then it is destroyed. */
  close(drainTimeoutMs: number): Promise<void>
  readonly sessionCount: number
}

/**
 * Where HTTP/2 meets the router (server.ts): `feature=+http2` read per connection, as
 * varnishd reads FEATURE(FEATURE_HTTP2) when a session starts. Without it a connection that
 * opens with the preface is closed without an answer, which is what varnishd 7.1 does (probed).
 */
export function createH2Gateway(deps: SessionDeps): H2Gateway {
  const sessions = new Set<H2Session>()
  let allClosed: (() => void) | undefined
  const onClosed = (s: H2Session) => {
    sessions.delete(s)
    if (sessions.size === 0) allClosed?.()
  }
  // One sweep a second for every session's idle and send timeouts: no timer per stream.
  const sweep = setInterval(() => {
    const now = Date.now()
    for (const s of sessions) s.check(now)
  }, 1000)
  sweep.unref()
  const serve = (socket: Socket, bytes: Buffer, peer: PeerAddresses) => {
    if (!deps.params.http2) {
      socket.destroy()
      return
    }
    sessions.add(new H2Session(socket, bytes, peer, deps, onClosed))
  }
  const params = deps.params
  const onH1 = deps.onRequest
  return {
    preface: serve,
    onRequest: (req, res) => {
      if (params.http2 && wantsH2c(req)) upgradeToH2(req, res, serve)
      else onH1(req, res)
    },
    get sessionCount() {
      return sessions.size
    },
    close(drainTimeoutMs) {
      clearInterval(sweep)
      if (sessions.size === 0) return Promise.resolve()
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          for (const s of sessions) s.destroy()
        }, drainTimeoutMs)
        allClosed = () => {
          clearTimeout(timer)
          resolve()
        }
        for (const s of sessions) s.end()
      })
    },
  }
}
