import type { Logger } from '../logger.js'

/** What a daemon hands to the daemon layer: it must be able to drain and, optionally, reload. */
export interface Service {
  /** Stop accepting, let in-flight work finish up to `drainTimeoutMs`, then destroy what is left. */
  close(opts?: { drainTimeoutMs?: number }): Promise<void>
  /** Re-read configuration; must keep the running one when the new one is invalid (and throw). */
  reload?(): Promise<void>
  /** SIGUSR1: open the log files again by name, after logrotate moved them (nginx, stunnel). */
  reopenLogs?(): void
}

/**
 * The two ways to stop, as nginx names them (nginx.org/en/docs/control.html): `fast` (SIGTERM,
 * SIGINT) drains for a bounded time and then cuts what is left; `graceful` (SIGQUIT) stops
 * accepting, closes idle keep-alive connections and waits for every request in flight.
 */
export type StopMode = 'fast' | 'graceful'

/**
 * How long a graceful stop waits: without `worker_shutdown_timeout` nginx waits for as long as
 * requests take. setTimeout's longest delay (24.8 days) stands for "no bound" so that every
 * close() that arms a timer with it needs no special case.
 */
export const GRACEFUL_DRAIN_MS = 2_147_483_647

/** The time a stop in `mode` gives in-flight work. */
export function drainTimeFor(mode: StopMode, fastDrainMs: number): number {
  return mode === 'graceful' ? GRACEFUL_DRAIN_MS : fastDrainMs
}

/** The orders a manager sends its children, and what a signal means to a daemon on its own. */
export type Order = { kind: 'stop'; mode: StopMode } | { kind: 'reload' } | { kind: 'reopen' }

export interface RunOrderOptions {
  logger: Logger
  /** SIGTERM's drain time (default 10 s). */
  drainTimeoutMs?: number
  /**
   * Called as a stop begins, before the service closes anything; the stop waits for it
   * (`--metrics`: readiness turns 503, then `--drain-delay`). A second stop does not wait.
   */
  beforeStop?(): Promise<void>
  /** Said after reload()'s success or failure, e.g. to the manager. */
  onReloaded?(error: Error | undefined): void
  /** A manager logs a failed reload once for all its children (manager.ts); the child does not. */
  managed?: boolean
}

/**
 * Carries out one order on a service. A stop sets `process.exitCode` and lets the event loop
 * empty; a last unref'd timer ends a process whose peer keeps a handle open past the drain.
 * A second stop while stopping ends the process at once (nginx's second SIGTERM, Ctrl-C twice).
 */
export function orderRunner(service: Service, opts: RunOrderOptions): (order: Order, why: string) => void {
  const { logger } = opts
  const fastDrainMs = opts.drainTimeoutMs ?? 10_000
  let stopping: StopMode | undefined
  let secondStop: () => void = () => undefined
  return (order, why) => {
    if (order.kind === 'stop') {
      if (stopping !== undefined) {
        secondStop()
        // SIGTERM during a graceful stop turns it fast, as in nginx; the same signal again stops now.
        if (stopping === 'graceful' && order.mode === 'fast') {
          logger.warn(`${why}: graceful stop turned fast`)
          stopping = 'fast'
          setTimeout(() => process.exit(process.exitCode ?? 0), fastDrainMs + 1000).unref()
          return
        }
        logger.warn(`${why} again: stopping now`)
        process.exit(process.exitCode ?? 1)
      }
      stopping = order.mode
      const drainTimeoutMs = drainTimeFor(order.mode, fastDrainMs)
      logger.info(
        order.mode === 'graceful'
          ? `${why}: graceful stop, finishing the requests in flight`
          : `${why}: draining for up to ${drainTimeoutMs} ms`,
      )
      // A second stop order during beforeStop's delay starts the stop at once (see above).
      const second = new Promise<void>((resolve) => {
        secondStop = resolve
      })
      Promise.race([opts.beforeStop?.() ?? Promise.resolve(), second])
        .then(() => service.close({ drainTimeoutMs }))
        .then(
        () => {
          logger.info('stopped')
          process.exitCode ??= 0
          setTimeout(() => process.exit(), 1000).unref()
        },
        (err: unknown) => {
          logger.error(`error while stopping: ${(err as Error).message}`)
          process.exitCode = 1
          setTimeout(() => process.exit(), 1000).unref()
        },
      )
      return
    }
    if (order.kind === 'reload') {
      if (!service.reload) {
        logger.info(`${why}: nothing to reload`)
        opts.onReloaded?.(undefined)
        return
      }
      logger.info(`${why}: reloading configuration`)
      service.reload().then(
        () => {
          logger.info('reloaded')
          opts.onReloaded?.(undefined)
        },
        (err: unknown) => {
          if (!opts.managed) logger.error(`reload failed, keeping the running configuration: ${(err as Error).message}`)
          opts.onReloaded?.(err as Error)
        },
      )
      return
    }
    service.reopenLogs?.()
    logger.info(`${why}: log files reopened`)
  }
}
