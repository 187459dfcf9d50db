import type { ChildProcess } from 'node:child_process'
import { ChildStartError } from '../errors.js'
import type { Logger } from '../logger.js'
import { RestartBackoff } from './backoff.js'
import type { ChildReport } from './child-orders.js'
import { SpareChild } from './spare-child.js'
import type { Order, StopMode } from './service.js'

export interface SupervisorOptions {
  logger: Logger
  /** What the log calls a child: varnishd says "child", nginx "worker process". */
  noun: string
  /** Starts one child with an IPC channel (child_process.spawn with 'ipc', or cluster.fork().process). */
  spawn(spare: boolean): ChildProcess
  /** Keep a spare child waiting (spare-child.ts), so that a dead one's place is taken at once. */
  spare?: boolean
  backoff?: () => RestartBackoff
}

interface Slot {
  child: ChildProcess | undefined
  /** The reloads sent before this child was ready: it may have read the configuration before the last one. */
  reloadsAtStart: number
  startedAt: number
  ready: boolean
  backoff: RestartBackoff
  timer: NodeJS.Timeout | undefined
}

/**
 * Keeps N children alive, as nginx's master keeps its workers and varnishd's manager its child.
 * A child that dies is started again, after a wait that grows while it keeps dying young (never
 * a tight loop of forks), with its cause said once per restart; the supervisor never stops for
 * it. Only a child that dies before the first generation was ever ready fails start(): that is a
 * start-up error (a port, a file), and the daemon exits with it as nginx does.
 */
export class Supervisor {
  readonly #opts: SupervisorOptions
  readonly #slots: Slot[] = []
  #stopping = false
  #exited: (() => void) | undefined
  #stopped: Promise<void> | undefined
  #startFailed: ((err: Error) => void) | undefined
  #started = false
  #reloads = 0
  readonly #spare: SpareChild | undefined

  constructor(opts: SupervisorOptions) {
    this.#opts = opts
    this.#spare = opts.spare ? new SpareChild(() => opts.spawn(true), opts.logger, opts.noun) : undefined
  }

  /** Starts `n` children; resolves when every one has said it is ready. */
  start(n: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let waiting = n
      this.#startFailed = reject
      for (let i = 0; i < n; i++) {
        const slot: Slot = { child: undefined, reloadsAtStart: 0, startedAt: 0, ready: false, backoff: this.#opts.backoff?.() ?? new RestartBackoff(), timer: undefined }
        this.#slots.push(slot)
        this.#run(slot, () => {
          if (--waiting === 0) {
            this.#started = true
            this.#startFailed = undefined
            this.#spare?.start()
            resolve()
          }
        })
      }
    })
  }

  /** The children's process ids (for tests and logs). */
  get pids(): number[] {
    return this.#slots.flatMap((s) => (s.child?.pid === undefined ? [] : [s.child.pid]))
  }

  /** The running children (for the manager's metrics, ops/child-metrics.ts). */
  get children(): ChildProcess[] {
    return this.#slots.flatMap((s) => (s.child === undefined ? [] : [s.child]))
  }

  /** Sends an order to every running child. */
  send(order: Order): void {
    for (const s of this.#slots) if (s.child?.connected) s.child.send(order)
  }

  /** Sends reload to every child; resolves with the first failure a child reports, if any. */
  async reload(): Promise<Error | undefined> {
    this.#reloads++
    const answers = this.#slots
      .filter((s) => s.child?.connected && s.ready)
      .map(
        (s) =>
          new Promise<string | undefined>((resolve) => {
            const child = s.child as ChildProcess
            const onMessage = (m: ChildReport) => {
              if (m?.kind !== 'reloaded') return
              done(m.error)
            }
            const done = (error: string | undefined) => {
              child.off('message', onMessage)
              child.off('exit', onExit)
              resolve(error)
            }
            const onExit = () => done('the child exited while reloading')
            child.on('message', onMessage)
            child.once('exit', onExit)
            child.send({ kind: 'reload' } satisfies Order)
          }),
      )
    const errors = (await Promise.all(answers)).filter((e) => e !== undefined)
    return errors.length ? new Error(errors[0]) : undefined
  }

  /** Stops every child (no restarts from now on); resolves once all have exited. Again: the order is sent again. */
  stop(mode: StopMode): Promise<void> {
    this.#stopping = true
    this.#spare?.stop()
    for (const s of this.#slots) clearTimeout(s.timer)
    const running = this.#slots.filter((s) => s.child && s.child.exitCode === null && s.child.signalCode === null)
    this.#stopped ??= new Promise<void>((resolve) => {
      this.#exited = resolve
    })
    if (running.length === 0) this.#exited?.()
    for (const s of running) {
      const child = s.child as ChildProcess
      // A child not yet ready has no orders handler: a signal stops it (it has nothing to drain).
      if (child.connected && s.ready) child.send({ kind: 'stop', mode } satisfies Order)
      else child.kill('SIGKILL')
    }
    return this.#stopped
  }

  #run(slot: Slot, onFirstReady?: () => void, spare?: ChildProcess): void {
    const { logger, noun } = this.#opts
    const child = spare ?? this.#opts.spawn(false)
    slot.child = child
    slot.startedAt = Date.now()
    slot.reloadsAtStart = this.#reloads
    slot.ready = false
    child.on('message', (m: ChildReport) => {
      if (m?.kind !== 'ready' || slot.ready) return
      slot.ready = true
      logger.info(`${noun} ${child.pid} serving`)
      // A reload asked for while it started: it may have read the configuration before.
      if (slot.reloadsAtStart < this.#reloads) child.send({ kind: 'reload' } satisfies Order)
      onFirstReady?.()
      onFirstReady = undefined
    })
    child.once('exit', (code, signal) => {
      if (this.#stopping) {
        if (this.#slots.every((s) => s.child?.exitCode !== null || s.child?.signalCode !== null)) this.#exited?.()
        return
      }
      const cause = signal ? `killed by ${signal}` : `exited with code ${code}`
      if (!this.#started && !slot.ready) {
        this.#startFailed?.(new ChildStartError(`${noun} ${child.pid} ${cause} before it was ready`, Boolean(code)))
        this.#startFailed = undefined
        this.#stopping = true
        for (const s of this.#slots) if (s !== slot) s.child?.kill('SIGKILL')
        return
      }
      const wait = slot.backoff.next(Date.now() - slot.startedAt)
      // A child dying in a loop waits out its backoff; any other death is replaced by the spare.
      const spare = wait === 0 ? this.#spare?.take() : undefined
      if (spare) {
        logger.error(`${noun} ${child.pid} ${cause}; spare ${spare.pid} takes its place`)
        this.#run(slot, undefined, spare)
        return
      }
      // varnishd: "Child (1234) died signal=9"; nginx: "worker process 1234 exited on signal 9".
      logger.error(`${noun} ${child.pid} ${cause}; starting another${wait ? ` in ${wait} ms (${slot.backoff.streak} deaths in a row)` : ''}`)
      slot.timer = setTimeout(() => this.#run(slot), wait)
    })
  }
}
