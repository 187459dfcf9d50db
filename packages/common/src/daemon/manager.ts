import { type ChildProcess, spawn } from 'node:child_process'
import type { HostPort } from '../address.js'
import type { Logger } from '../logger.js'
import { holdSocket, type HeldSocket, LISTEN_FDS_ENV, listenFdsEnv } from './listen-fds.js'
import type { PidFile } from './pid-file.js'
import { drainTimeFor, type Order, type StopMode } from './service.js'
import { SIGNAL_ORDERS } from './signals.js'
import { Supervisor } from './supervisor.js'

export interface ManagerOptions {
  logger: Logger
  /** What the log calls a child: "child" (varnishd) or "worker process" (nginx). */
  noun: string
  /** How many children serve at once. */
  children: number
  /** Every address a child listens on: held here, handed down (listen-fds.ts). */
  addresses: readonly HostPort[]
  /**
   * Addresses held with SO_REUSEPORT, so that threads of a child can bind sockets of their own
   * beside the one handed down (caching-router's `--workers`): each closes only its own.
   */
  reusePort?: readonly HostPort[]
  /** The child's command line: node's own flags are kept; the child knows it is one by EDGESTACK_MANAGED. */
  childArgs?: readonly string[]
  /**
   * Starts a child some other way, for children that share their sockets through node:cluster
   * (tls-terminator's workers); it must set EDGESTACK_MANAGED=1 in the child's environment.
   */
  spawn?(): ChildProcess
  /** Keep a spare child loaded and waiting (spare-child.ts); not with `spawn`. */
  spare?: boolean
  pidFile?: PidFile
  /** SIGTERM's drain time; the children are told the same. */
  drainTimeoutMs?: number
  /**
   * SIGHUP. Without it every child reloads its own configuration (varnishd's vcl.load).
   * With it (nginx's master) the manager reads the configuration and answers with the addresses
   * it needs, or throws to keep the running one; the manager then binds what is new, starts a
   * new generation of children, and only once they serve retires the old one gracefully and
   * closes the addresses no longer named.
   */
  readConfig?(): Promise<readonly HostPort[]>
  /**
   * Called as a stop begins, before the listening sockets close; the stop waits for it
   * (`--metrics`: readiness 503, then `--drain-delay`). A second stop does not wait.
   */
  beforeStop?(): Promise<void>
  /** SIGUSR1: the manager's own log files; children are told too. */
  reopenLogs?(): void
  /** After every reload (SIGHUP or `reload()`), with its error when the running configuration was kept. */
  onReloaded?(error: Error | undefined): void
}

const keyOf = (a: HostPort) => `${a.host}|${a.port}`

/**
 * The manager, as varnishd's and nginx's master: it binds the listening sockets and keeps them,
 * runs the serving processes as its children and starts a dead one again (supervisor.ts), turns
 * signals into orders for the children, and owns the pid file. It never serves a request, so it
 * has nothing to crash on. Resolves once the first children serve; rejects (nothing left
 * running) if they cannot start.
 */
export async function runManager(
  opts: ManagerOptions,
): Promise<{
  sockets: readonly HeldSocket[]
  pids(): number[]
  children(): ChildProcess[]
  /** What SIGHUP does, for a reload asked some other way (a certificate file changed). */
  reload(why: string): Promise<void>
}> {
  const { logger } = opts
  const reusePort = new Set((opts.reusePort ?? []).map(keyOf))
  // The signals are ours from the start: Node's default for SIGQUIT ends the process at once
  // (exit 131) and SIGHUP/SIGTERM without a word. One that comes while the first children start
  // is held and obeyed once they serve.
  const early: Array<[string, Order]> = []
  let obey = (signal: string, order: Order) => {
    early.push([signal, order])
  }
  for (const [signal, order] of Object.entries(SIGNAL_ORDERS)) process.on(signal, () => obey(signal, order))
  let sockets = await holdAll(opts.addresses, [], reusePort)
  const childrenFor = (held: readonly HeldSocket[]) =>
    new Supervisor({
      logger,
      noun: opts.noun,
      spawn: opts.spawn ? () => (opts.spawn as () => ChildProcess)() : (spare) => spawnChild(opts.childArgs ?? [], held, spare),
      spare: opts.spare === true && opts.spawn === undefined,
    })
  let current = childrenFor(sockets)
  try {
    await current.start(opts.children)
    // nginx stops with `[emerg] open() "..." failed` when it cannot write its pid file: a daemon
    // left running without one could not be stopped through it.
    await opts.pidFile?.write().catch(async (err: unknown) => {
      await current.stop('fast')
      throw err
    })
  } catch (err) {
    for (const s of sockets) s.close()
    throw err
  }

  const fastDrainMs = opts.drainTimeoutMs ?? 10_000
  let stopping: StopMode | undefined
  const retiring = new Set<Supervisor>()
  let delayed: ((mode: StopMode) => void) | undefined
  const stop = (mode: StopMode, why: string) => {
    if (stopping === 'graceful' && mode === 'graceful') return
    const first = stopping === undefined
    stopping = mode
    logger.info(mode === 'graceful' ? `${why}: graceful stop` : `${why}: stopping, draining for up to ${drainTimeFor(mode, fastDrainMs)} ms`)
    if (first && opts.beforeStop) {
      // The listeners keep accepting until beforeStop is done, or a second stop order comes.
      let go = (m: StopMode) => {
        go = () => undefined
        delayed = undefined
        closeAndStop(m, true)
      }
      delayed = (m) => go(m)
      void opts.beforeStop().then(() => go(stopping ?? mode))
      return
    }
    if (delayed) return delayed(mode)
    closeAndStop(mode, first)
  }
  const closeAndStop = (mode: StopMode, first: boolean) => {
    // nginx's master closes its listening sockets as it tells the workers to stop: new
    // connections are refused rather than queued for nobody. A second stop is passed on too:
    // the children turn a graceful stop fast, or stop at once on a second fast one.
    for (const s of sockets) s.close()
    sockets = []
    const done = Promise.all([current, ...retiring].map((g) => g.stop(mode)))
    if (!first) return
    void done.then(async () => {
      await opts.pidFile?.remove()
      logger.info('stopped')
      process.exitCode ??= 0
      setTimeout(() => process.exit(), 1000).unref()
    })
  }

  let reloading = false
  const reload = async (why: string) => {
    if (stopping || reloading) return
    reloading = true
    try {
      if (!opts.readConfig) {
        logger.info(`${why}: reloading every ${opts.noun}`)
        const err = await current.reload()
        if (err) logger.error(`reload failed, keeping the running configuration: ${err.message}`)
        else logger.info('reloaded')
        opts.onReloaded?.(err)
        return
      }
      logger.info(`${why}: reloading configuration`)
      let next: HeldSocket[] | undefined
      try {
        next = await holdAll(await opts.readConfig(), sockets, reusePort)
        const fresh = childrenFor(next)
        await fresh.start(opts.children).catch(async (err: Error) => {
          await fresh.stop('fast')
          throw err
        })
        const old = current
        current = fresh
        retiring.add(old)
        void old.stop('graceful').then(() => retiring.delete(old))
      } catch (err) {
        for (const s of next ?? []) if (!sockets.includes(s)) s.close()
        logger.error(`reload failed, keeping the running configuration: ${(err as Error).message}`)
        opts.onReloaded?.(err as Error)
        return
      }
      for (const s of sockets) if (!next.includes(s)) s.close()
      sockets = next
      logger.info('reloaded')
      opts.onReloaded?.(undefined)
    } finally {
      reloading = false
    }
  }

  obey = (signal, order) => {
    if (order.kind === 'stop') stop(order.mode, signal)
    else if (order.kind === 'reload') void reload(signal)
    else {
      opts.reopenLogs?.()
      current.send(order)
      logger.info(`${signal}: log files reopened`)
    }
  }
  for (const [signal, order] of early.splice(0)) obey(signal, order)
  // Retiring generations still serve their last requests: their counters count too.
  return { sockets, pids: () => current.pids, children: () => [current, ...retiring].flatMap((g) => g.children), reload }
}

/**
 * Holds every address, reusing a socket of `kept` held for the same spelling (each once: two
 * `:0` are two sockets); all or nothing.
 */
async function holdAll(addresses: readonly HostPort[], kept: readonly HeldSocket[], reusePort: ReadonlySet<string>): Promise<HeldSocket[]> {
  const out: HeldSocket[] = []
  try {
    for (const a of addresses) {
      const reuse = kept.find((s) => keyOf(s.wanted) === keyOf(a) && !out.includes(s))
      out.push(reuse ?? (await holdSocket(a, { reusePort: reusePort.has(keyOf(a)) })))
    }
  } catch (err) {
    for (const s of out) if (!kept.includes(s)) s.close()
    throw err
  }
  return out
}

/** The sockets go in the child's descriptors 4 and up (0-2 stdio, 3 the IPC channel). */
function spawnChild(args: readonly string[], held: readonly HeldSocket[], spare: boolean): ChildProcess {
  const child = spawn(process.execPath, [...process.execArgv, ...args], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc', ...held.map((s) => s.fd)],
    env: { ...process.env, EDGESTACK_MANAGED: '1', EDGESTACK_SPARE: spare ? '1' : '0', [LISTEN_FDS_ENV]: listenFdsEnv(held, 4) },
  })
  // An IPC send to a child that just died fails with EPIPE: its exit is what we act on.
  child.on('error', () => undefined)
  return child
}
