import { type Order, orderRunner, type RunOrderOptions, type Service } from './service.js'

export type SignalOptions = RunOrderOptions

/** nginx's signal table (nginx.org/en/docs/control.html), which varnishd and stunnel agree with where they have one. */
export const SIGNAL_ORDERS: Readonly<Partial<Record<NodeJS.Signals, Order>>> = Object.freeze({
  SIGTERM: { kind: 'stop', mode: 'fast' },
  SIGINT: { kind: 'stop', mode: 'fast' },
  SIGQUIT: { kind: 'stop', mode: 'graceful' },
  SIGHUP: { kind: 'reload' },
  SIGUSR1: { kind: 'reopen' },
})

/**
 * A daemon running on its own: SIGTERM and SIGINT drain then stop (a second one stops at once);
 * SIGQUIT stops gracefully (Node's default for it is a core dump: exit 131 and the buffered
 * access-log lines lost); SIGHUP reloads; SIGUSR1 reopens the log files. Without reopenLogs,
 * runMain's guard still keeps SIGUSR1 from opening Node's inspector.
 */
export function handleSignals(service: Service, opts: SignalOptions): { order(order: Order, why: string): void; off(): void } {
  const run = orderRunner(service, opts)
  const handlers = new Map<NodeJS.Signals, () => void>()
  for (const [signal, order] of Object.entries(SIGNAL_ORDERS) as [NodeJS.Signals, Order][]) {
    if (order.kind === 'reopen' && !service.reopenLogs) continue
    const handler = () => run(order, signal)
    handlers.set(signal, handler)
    process.on(signal, handler)
  }
  return {
    // An order from elsewhere than a signal (tls-terminator's certificate files changed) runs
    // through the same runner, so it waits its turn behind a stop like a SIGHUP would.
    order: run,
    off: () => {
      for (const [signal, handler] of handlers) process.off(signal, handler)
    },
  }
}
