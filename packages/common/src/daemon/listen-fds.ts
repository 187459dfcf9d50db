import { lookup } from 'node:dns/promises'
import net, { type AddressInfo } from 'node:net'
import { getSystemErrorMap, getSystemErrorName } from 'node:util'
import { formatAddress, type HostPort } from '../address.js'
import { StartupError } from '../errors.js'

/** A bound socket the manager keeps for its children (varnishd's and nginx's listening sockets). */
export interface HeldSocket {
  /** The address as the configuration spells it (port 0 included): how a child finds it. */
  readonly wanted: HostPort
  /** What the kernel gave. */
  readonly bound: HostPort
  readonly fd: number
  close(): void
}

interface TcpHandle {
  fd: number
  getsockname(out: Record<string, unknown>): number
  close(): void
}
type CreateServerHandle = (address: string | null, port: number, addressType: number, fd?: number, flags?: number) => TcpHandle | number

/** libuv's UV_TCP_REUSEPORT bind flag (tcp_wrap's constants; what `listen({ reusePort })` sets). */
const UV_TCP_REUSEPORT = 2

/**
 * Binds without listening, as node:cluster's primary does for SCHED_NONE (`net._createServerHandle`,
 * which cluster itself uses): the first child's listen(2) puts the socket in LISTEN, and it stays
 * there for as long as the manager holds its descriptor, whatever happens to the children. The
 * manager never accepts; a child's death leaves connections queued in the kernel's backlog for
 * the next child, so none is refused.
 */
export async function holdSocket(wanted: HostPort, opts: { reusePort?: boolean } = {}): Promise<HeldSocket> {
  const ip = net.isIP(wanted.host) ? wanted.host : (await lookup(wanted.host)).address
  const create = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle
  const handle = create(ip, wanted.port, net.isIP(ip), undefined, opts.reusePort ? UV_TCP_REUSEPORT : 0)
  if (typeof handle === 'number') {
    throw new StartupError(`cannot listen on ${formatAddress(wanted)}: bind ${getSystemErrorName(handle)}: ${getSystemErrorMap().get(handle)?.[1] ?? 'error'}`)
  }
  const out: { address?: string; port?: number } = {}
  handle.getsockname(out)
  if (!out.port || (wanted.port !== 0 && out.port !== wanted.port)) {
    // libuv keeps a bind's EADDRINUSE for the listen(2) that follows (uv__tcp_bind's
    // delayed_error): the socket is left unbound, and a child's listen on it would take any port.
    handle.close()
    throw new StartupError(`cannot listen on ${formatAddress(wanted)}: bind EADDRINUSE: address already in use`)
  }
  return {
    wanted,
    bound: { host: out.address ?? ip, port: out.port ?? wanted.port },
    fd: handle.fd,
    close: () => handle.close(),
  }
}

const inherited = new Map<string, number[]>()
const keyOf = (a: HostPort) => `${a.host}|${a.port}`

/** The environment variable that carries the inherited sockets to a child (its `listenFdsEnv`). */
export const LISTEN_FDS_ENV = 'EDGESTACK_LISTEN_FDS'

/** In the manager: the value of LISTEN_FDS_ENV for a child whose stdio slots from `firstFd` on hold `sockets`. */
export function listenFdsEnv(sockets: readonly HeldSocket[], firstFd: number): string {
  return JSON.stringify(sockets.map((s, i) => ({ host: s.wanted.host, port: s.wanted.port, fd: firstFd + i })))
}

/** In a child (from cli.ts, which reads the environment): the sockets its manager handed down. */
export function inheritListenFds(value: string | undefined): void {
  if (!value) return
  for (const s of JSON.parse(value) as (HostPort & { fd: number })[]) {
    const fds = inherited.get(keyOf(s)) ?? []
    fds.push(s.fd)
    inherited.set(keyOf(s), fds)
  }
}

/**
 * Listens on `address`, or on the socket the manager handed down for it (systemd's socket
 * activation works the same way). Each handed-down socket serves one listen, in the order the
manager held them: `-a 127.0.0.1:0 -T 127.0.0.1:0` are two sockets. `describe` says what the address is for in the error.
 */
export async function listenOn(server: net.Server, address: HostPort, opts: { reusePort?: boolean; describe?: string } = {}): Promise<HostPort> {
  const fd = inherited.get(keyOf(address))?.shift()
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(new StartupError(`${opts.describe ?? 'cannot listen on'} ${formatAddress(address)}: ${err.message}`, { cause: err }))
    server.once('error', onError)
    const done = () => {
      server.off('error', onError)
      resolve()
    }
    if (fd !== undefined) server.listen({ fd }, done)
    else server.listen({ host: address.host, port: address.port, ...(opts.reusePort ? { reusePort: true } : {}) }, done)
  })
  const a = server.address() as AddressInfo
  return { host: a.address, port: a.port }
}
