import { type Order, orderRunner, type RunOrderOptions, type Service } from './service.js'
import { SIGNAL_ORDERS } from './signals.js'

/** What a child tells its manager over the IPC channel. */
export type ChildReport = { kind: 'ready' } | { kind: 'waiting' } | { kind: 'reloaded'; error?: string }

/**
 * A message to the manager. Its channel may close at any moment (the manager stopped or was
 * killed): the send fails with EPIPE, which without a callback is an 'error' event that ends
 * the process with a stack trace. The 'disconnect' handlers decide what a child does then.
 */
export function tellManager(message: ChildReport | { readonly kind: string; readonly [field: string]: unknown }): void {
  process.send?.(message, undefined, {}, () => undefined)
}

/** True in a process started by a manager (runManager) with its IPC channel. */
export function isManagedChild(): boolean {
  return typeof process.send === 'function' && process.env.EDGESTACK_MANAGED === '1'
}

/**
 * A spare child (spare-child.ts) stops here, its code loaded and its configuration read, until
 * its manager needs it; any other child goes straight on. A spare whose manager is gone exits.
 */
export async function awaitServeOrder(): Promise<void> {
  if (process.env.EDGESTACK_SPARE !== '1' || typeof process.send !== 'function') return
  const gone = () => process.exit(0)
  process.once('disconnect', gone)
  // Signals to the whole process group are its manager's business, as for a serving child.
  const ignore = () => undefined
  for (const signal of Object.keys(SIGNAL_ORDERS) as NodeJS.Signals[]) process.on(signal, ignore)
  await new Promise<void>((resolve) => {
    const onMessage = (m: { kind?: string }) => {
      if (m?.kind !== 'serve') return
      process.off('message', onMessage)
      resolve()
    }
    process.on('message', onMessage)
    tellManager({ kind: 'waiting' })
  })
  process.off('disconnect', gone)
  for (const signal of Object.keys(SIGNAL_ORDERS) as NodeJS.Signals[]) process.off(signal, ignore)
}

/** Tells the manager the child serves now: its restart counts as a success from here. */
export function reportReady(): void {
  tellManager({ kind: 'ready' })
}

/**
 * A child takes its orders from its manager only, over the IPC channel, as varnishd's child
 * takes them over its CLI pipe. The signals that reach it too (Ctrl-C and service managers signal
 * the whole process group) are ignored: obeyed as well, every stop would arrive twice, and the
 * second would cut the drain short. The manager gone (killed with -9) means the child is on its
 * own with nobody to restart it or stop it: it stops, fast.
 */
export function obeyManager(service: Service, opts: Omit<RunOrderOptions, 'onReloaded' | 'managed'>): void {
  const run = orderRunner(service, {
    ...opts,
    managed: true,
    onReloaded: (err) => tellManager({ kind: 'reloaded', ...(err ? { error: err.message } : {}) }),
  })
  for (const signal of Object.keys(SIGNAL_ORDERS) as NodeJS.Signals[]) process.on(signal, () => undefined)
  process.on('message', (m: Order) => {
    if (m && typeof m === 'object' && (m.kind === 'stop' || m.kind === 'reload' || m.kind === 'reopen')) run(m, 'manager')
  })
  process.on('disconnect', () => run({ kind: 'stop', mode: 'fast' }, 'manager gone'))
  // A manager that died while this child was still starting (before it took orders here) left
  // a 'disconnect' nobody heard: without this the child would serve on, orphaned, for ever.
  if (!process.connected) run({ kind: 'stop', mode: 'fast' }, 'manager gone')
  // The channel must not keep a stopping child alive; orders still arrive while it serves.
  process.channel?.unref()
}
