import type { Logger } from './logger.js'

/** What a daemon hands to the signal handling: it must be able to drain and, optionally, reload. */
export interface Service {
  /** Stop accepting, let in-flight work finish up to `drainTimeoutMs`, then destroy what is left. */
  close(opts?: { drainTimeoutMs?: number }): Promise<void>
  /** Re-read configuration; must keep the running one when the new one is invalid (and throw). */
  reload?(): Promise<void>
  /** SIGUSR1: open the log files again by name, after logrotate moved them (nginx, stunnel). */
  reopenLogs?(): void
}

export interface SignalOptions {
  logger: Logger
  drainTimeoutMs?: number
}

/**
 * SIGTERM and SIGINT drain then stop; a second one stops at once. SIGHUP reloads, as stunnel,
 * varnishd and nginx all do; SIGUSR1 reopens the log files, as stunnel and nginx do. Handlers set `process.exitCode` and let the event loop empty;
 * a last unref'd timer ends a process whose peer keeps a handle open past the drain.
 */
export function handleSignals(service: Service, opts: SignalOptions): () => void {
  const { logger } = opts
  const drainTimeoutMs = opts.drainTimeoutMs ?? 10_000
  let stopping = false

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn(`${signal} again: stopping now`)
      process.exit(process.exitCode ?? 1)
    }
    stopping = true
    logger.info(`${signal}: draining for up to ${drainTimeoutMs} ms`)
    service.close({ drainTimeoutMs }).then(
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
  }
  const reload = () => {
    if (!service.reload) {
      logger.info('SIGHUP: nothing to reload')
      return
    }
    logger.info('SIGHUP: reloading configuration')
    service.reload().then(
      () => logger.info('reloaded'),
      (err: unknown) => logger.error(`reload failed, keeping the running configuration: ${(err as Error).message}`),
    )
  }
  // Without reopenLogs, runMain's guard still keeps SIGUSR1 from opening Node's inspector.
  const reopen = () => {
    service.reopenLogs?.()
    logger.info('SIGUSR1: log files reopened')
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.on('SIGHUP', reload)
  if (service.reopenLogs) process.on('SIGUSR1', reopen)
  return () => {
    process.off('SIGTERM', stop)
    process.off('SIGINT', stop)
    process.off('SIGHUP', reload)
    process.off('SIGUSR1', reopen)
  }
}
