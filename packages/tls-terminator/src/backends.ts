import net from 'node:net'
import { formatAddress, type HostPort } from '@edgestack/common'
import type { ServiceModel } from './config/model.js'

export interface BackendConnection {
  socket: net.Socket
  target: HostPort
}

/** Told about every address that failed before another was tried (stunnel logs these too). */
export type OnAttemptFailed = (target: HostPort, err: Error) => void

/**
 * The `connect` addresses of one service. stunnel tries every address before giving up:
 * `failover = prio` always starts with the first, `failover = rr` starts one further each time
 * (stunnel(8), "failover"). Each attempt is bounded by TIMEOUTconnect.
 */
export class BackendPool {
  readonly #service: ServiceModel
  #next = 0

  constructor(service: ServiceModel) {
    this.#service = service
  }

  /**
   * `isAborted` is asked between attempts: a client that left needs no backend. `onread`, when
   * given, receives what the backend sends instead of the socket's stream side.
   */
  async connect(isAborted: () => boolean, onFailed?: OnAttemptFailed, onread?: net.OnReadOpts): Promise<BackendConnection> {
    const targets = this.#service.connect
    const start = this.#service.failover === 'rr' ? this.#next++ % targets.length : 0
    let lastError: Error | undefined
    for (let i = 0; i < targets.length; i++) {
      if (isAborted()) throw new Error('client left before the backend answered')
      const target = targets[(start + i) % targets.length] as HostPort
      try {
        const socket = await connectOne(target, this.#service.timeouts.connectMs, this.#service.local, onread)
        return { socket, target }
      } catch (err) {
        lastError = err as Error
        onFailed?.(target, lastError)
      }
    }
    throw lastError ?? new Error('no backend address')
  }
}

function connectOne(
  target: HostPort,
  timeoutMs: number,
  localAddress: string | undefined,
  onread: net.OnReadOpts | undefined,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: target.host,
      port: target.port,
      allowHalfOpen: true,
      noDelay: true,
      ...(localAddress ? { localAddress } : {}),
      ...(onread ? { onread } : {}),
    })
    const onError = (err: Error) => {
      socket.destroy()
      reject(err)
    }
    const onTimeout = () =>
      onError(new Error(`connect to ${formatAddress(target)} timed out after ${timeoutMs / 1000} s (TIMEOUTconnect)`))
    socket.setTimeout(timeoutMs)
    socket.once('timeout', onTimeout)
    socket.once('error', onError)
    socket.once('connect', () => {
      socket.setTimeout(0)
      socket.off('timeout', onTimeout)
      socket.off('error', onError)
      resolve(socket)
    })
  })
}
