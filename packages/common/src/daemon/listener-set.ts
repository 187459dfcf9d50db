import net from 'node:net'
import type { HostPort } from '../address.js'
import { listenOn } from './listen-fds.js'

type OnConnection = (socket: net.Socket) => void
type OnAcceptError = (err: Error) => void

interface Open {
  server: net.Server
  bound: HostPort
  owner: object | undefined
  onConnection: OnConnection | undefined
  onAcceptError: OnAcceptError | undefined
}

const keyOf = (a: HostPort) => `${a.host}|${a.port}`

/**
 * The listening sockets of a daemon that reloads in one process, kept across reloads as nginx
 * keeps its listening sockets: an address the new configuration names again keeps its socket
 * (and the connections queued on it), a new one is bound before anything changes, one no
 * longer named is closed only after the swap. So there is never a moment with nothing
 * listening, and a reload whose new address cannot be bound changes nothing.
 */
export class ListenerSet {
  readonly #open = new Map<string, Open>()

  /** Binds every address not open yet; all or nothing (what this call bound is closed on failure). */
  async bind(addresses: readonly HostPort[]): Promise<HostPort[]> {
    const fresh: Open[] = []
    const bound: HostPort[] = []
    try {
      for (const a of addresses) {
        let o = this.#open.get(keyOf(a)) ?? fresh.find((f) => keyOf(f.bound) === keyOf(a))
        if (!o) {
          const entry: Open = {
            server: net.createServer({ allowHalfOpen: true, noDelay: true }),
            bound: a,
            owner: undefined,
            onConnection: undefined,
            onAcceptError: undefined,
          }
          entry.server.on('connection', (socket) => {
            if (entry.onConnection) entry.onConnection(socket)
            else socket.destroy()
          })
          entry.bound = await listenOn(entry.server, a)
          // Past listen, an error is a failed accept (EMFILE when the descriptors are used up):
          // the client it was for is lost, the socket goes on listening (libuv retries).
          entry.server.on('error', (err) => entry.onAcceptError?.(err))
          fresh.push(entry)
          this.#open.set(keyOf(a), entry)
          // Keyed by the spelling asked for (port 0 included): a reload naming it again finds it.
          o = entry
        }
        bound.push(o.bound)
      }
    } catch (err) {
      for (const f of fresh) {
        f.server.close()
        for (const [k, v] of this.#open) if (v === f) this.#open.delete(k)
      }
      throw err
    }
    return bound
  }

  /**
   * From now on, connections to `address` go to `onConnection`, on behalf of `owner`, and a
   * failed accept on it to `onAcceptError`.
   */
  route(address: HostPort, owner: object, onConnection: OnConnection, onAcceptError?: OnAcceptError): void {
    const o = this.#open.get(keyOf(address))
    if (!o) throw new Error(`not bound: ${address.host}:${address.port}`)
    o.owner = owner
    o.onConnection = onConnection
    o.onAcceptError = onAcceptError
  }

  /**
   * Stops listening on every socket still routed to `owner` (the others have been handed to a
   * newer owner). Not waited for: net.Server's close callback waits for the connections it
   * accepted, which are the owner's to drain.
   */
  release(owner: object): void {
    for (const [k, o] of this.#open) {
      if (o.owner !== owner) continue
      this.#open.delete(k)
      o.server.close()
    }
  }
}
