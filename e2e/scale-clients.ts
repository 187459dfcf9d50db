import http from 'node:http'
import https from 'node:https'
import { io, type Socket } from 'socket.io-client'

/** One socket.io client of the scale tests, and everything it saw. */
export interface Client {
  socket: Socket
  transport: 'polling' | 'websocket'
  /** The instance it is connected to now (host:port, from the app's `welcome`). */
  instance: string | undefined
  name: string | undefined
  /** Every disconnect and connect error, in order: a sticky chain at rest has none. */
  problems: string[]
  received: Set<string>
  close(): void
}

export interface ClientOptions {
  url: string
  transport: 'polling' | 'websocket'
  /** Source address (any of 127.0.0.0/8): the router's hash director keys on it. */
  localAddress: string
  ca?: string
}

/**
 * A socket.io client from its own loopback address. socket.io's reconnection is on, with the
 * first delay (1 s) also as the maximum, so a client whose instance died tries again every
 * 0.5 to 1.5 s instead of backing off to 5 s.
 */
export function startClient(o: ClientOptions): Client {
  const agentOptions = { keepAlive: true, localAddress: o.localAddress }
  const agent = o.url.startsWith('https:') ? new https.Agent({ ...agentOptions, ca: o.ca }) : new http.Agent(agentOptions)
  const socket = io(o.url, {
    transports: [o.transport],
    agent: agent as unknown as string,
    localAddress: o.localAddress,
    ca: o.ca,
    forceNew: true,
    timeout: 5_000,
    reconnectionDelay: 1_000,
    reconnectionDelayMax: 1_000,
  } as Parameters<typeof io>[1])
  const c: Client = {
    socket,
    transport: o.transport,
    instance: undefined,
    name: undefined,
    problems: [],
    received: new Set(),
    close() {
      socket.close()
      agent.destroy()
    },
  }
  socket.on('welcome', (w: { name: string; instance: string }) => {
    c.instance = w.instance
    c.name = w.name
  })
  socket.on('disconnect', (reason, detail) => {
    c.instance = undefined
    c.problems.push(`disconnect: ${reason}${detail && 'description' in detail ? ` (${String(detail.description)})` : ''}`)
  })
  socket.on('connect_error', (err) => c.problems.push(`connect_error: ${err.message}`))
  socket.on('message', (m: { text: string }) => c.received.add(m.text))
  return c
}

/** Resolves once `check` holds, polling every 50 ms; rejects with `what` after `ms`. */
export async function until(check: () => boolean, ms: number, what: () => string): Promise<void> {
  for (const deadline = Date.now() + ms; !check(); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what()}`)
  }
}

/** Connected and welcomed by an instance. */
export const settled = (c: Client) => c.socket.connected && c.instance !== undefined

/** Sends a message and waits for the app's broadcast to bring it back (bounded). */
export async function roundTrip(c: Client, text: string, ms: number): Promise<void> {
  c.socket.emit('message', text)
  await until(() => c.received.has(text), ms, () => `${c.name} never got its own "${text}" back`)
}
