import type { ChildProcess } from 'node:child_process'
import type { Logger } from '../logger.js'
import { RestartBackoff } from './backoff.js'
import type { ChildReport } from './child-orders.js'

/** A new spare is started this long after the last one was taken, not in the promoted child's way. */
const RESPAWN_MS = 1000

/**
 * One child started ahead of need, that has loaded its code and read its configuration and
 * waits for a `serve` order before it listens. varnishd's manager forks its child in about 0.2 s;
 * a Node process needs longer than that to load a daemon's code (more on a loaded machine), so
 * the manager keeps one ready and a dead child's place is taken in the time its listen takes.
 */
export class SpareChild {
  readonly #spawn: () => ChildProcess
  readonly #logger: Logger
  readonly #noun: string
  readonly #backoff = new RestartBackoff({ firstMs: RESPAWN_MS })
  #child: ChildProcess | undefined
  #waiting = false
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  constructor(spawn: () => ChildProcess, logger: Logger, noun: string) {
    this.#spawn = spawn
    this.#logger = logger
    this.#noun = noun
  }

  start(delayMs = 0): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      const child = this.#spawn()
      const startedAt = Date.now()
      this.#child = child
      this.#waiting = false
      const onMessage = (m: ChildReport) => {
        if (m?.kind !== 'waiting') return
        this.#waiting = true
        this.#logger.info(`spare ${this.#noun} ${child.pid} waiting`)
      }
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.#child !== child) return
        this.#child = undefined
        this.#waiting = false
        if (this.#stopped) return
        const wait = Math.max(this.#backoff.next(Date.now() - startedAt), RESPAWN_MS)
        this.#logger.warn(`spare ${this.#noun} ${child.pid} ${signal ? `killed by ${signal}` : `exited with code ${code}`}; another in ${wait} ms`)
        this.start(wait)
      }
      child.on('message', onMessage)
      child.once('exit', onExit)
      this.#detach = () => {
        child.off('message', onMessage)
        child.off('exit', onExit)
      }
    }, delayMs)
  }

  #detach: () => void = () => undefined

  /** The spare, told to serve, if one is waiting; a new spare is started a little later. */
  take(): ChildProcess | undefined {
    const child = this.#child
    if (!child || !this.#waiting || !child.connected) return undefined
    this.#detach()
    this.#child = undefined
    this.#waiting = false
    child.send({ kind: 'serve' })
    this.start(RESPAWN_MS)
    return child
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    // It holds nothing and serves nothing, and takes no signal but this one while it waits.
    this.#child?.kill('SIGKILL')
  }
}
