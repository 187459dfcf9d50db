import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads'
import type { HostPort, Logger } from '@edgestack/common'
import type { PeerStats } from '../admin.js'
import type { CliModel } from '../config/model.js'
import { type Counters, sumCounters, sumFigures } from '../counters.js'
import type { CachingRouter } from '../server.js'

/** What worker 0 (the child's main thread) tells a worker thread. */
export type PoolMessage =
  | { t: 'peer'; index: number; port: MessagePort }
  | { t: 'cli'; words: string[] }
  | { t: 'stats'; id: number }
  | { t: 'reload' }
  | { t: 'close'; drainTimeoutMs: number }

/** What a worker thread tells worker 0. */
export type WorkerMessage = { t: 'ready' } | { t: 'closed' } | { t: 'stats'; id: number; stats: PeerStats }

/** Waits before starting a worker that died again, growing to this (never a tight loop). */
const MAX_RESTART_DELAY_MS = 30_000
/** A worker that served this long before dying is restarted at once. */
const STABLE_MS = 10_000

const THREAD = new URL('./worker-thread.js', import.meta.url)

/**
 * `--workers N` in the child: worker 0 is the child's main thread (its router answers -T);
 * workers 1..N-1 are threads started here, each a router on the same listening descriptors.
 * Every pair of workers has a MessageChannel for the shared cache (peer-cache.ts); the CLI's
 * state changes (ban, param.set, vcl.*) reach every worker through here, `stats` sums theirs,
 * and a worker that dies is started again, the others serving meanwhile.
 */
export class WorkerPool {
  readonly #model: CliModel
  readonly #main: CachingRouter
  readonly #logger: Logger
  readonly #count: number
  readonly #workers: Array<Worker | undefined>
  // The state changes made since start, replayed to a restarted worker (bans are not: its cache is empty).
  readonly #history: string[][] = []
  readonly #asks = new Map<number, { left: number; got: PeerStats[]; done: (s: PeerStats[]) => void }>()
  #nextId = 0
  #closing = false
  readonly #deaths: number[]

  /** `bound`: worker 0's TCP addresses as bound (`:0` resolved), for the others to bind beside. */
  constructor(model: CliModel, main: CachingRouter, count: number, bound: readonly HostPort[], logger: Logger) {
    // A Unix socket (-a /path) is worker 0's alone: binding it again would unlink it.
    const tcp = model.listen.filter((l) => !('path' in l.address))
    this.#model = { ...model, listen: tcp.map((l, i) => ({ ...l, address: bound[i] as HostPort })) }
    this.#main = main
    this.#count = count
    this.#logger = logger
    this.#workers = new Array(count).fill(undefined)
    this.#deaths = new Array(count).fill(0)
    main.cli.fanout = (words) => this.#fanout(words)
    main.cli.summedStats = () => this.summedStats()
    main.cli.panicWorker = (index) => this.#panic(index ?? count - 1)
  }

  #panic(index: number): string | undefined {
    const worker = Number.isInteger(index) ? this.#workers[index] : undefined
    if (worker === undefined) return `no worker thread ${index} running (1 to ${this.#count - 1})`
    this.#logger.warn(`debug.panic.worker: ending worker ${index}`)
    void worker.terminate()
    return undefined
  }

  /** Starts workers 1..N-1; resolves when each listens. */
  async start(): Promise<void> {
    const ports: Array<Record<number, MessagePort>> = Array.from({ length: this.#count }, () => ({}))
    for (let i = 0; i < this.#count; i++) {
      for (let j = i + 1; j < this.#count; j++) {
        const { port1, port2 } = new MessageChannel()
        ;(ports[i] as Record<number, MessagePort>)[j] = port1
        ;(ports[j] as Record<number, MessagePort>)[i] = port2
      }
    }
    const peers = this.#main.peers as NonNullable<CachingRouter['peers']>
    for (const [j, port] of Object.entries(ports[0] as Record<number, MessagePort>)) peers.connect(Number(j), port)
    await Promise.all(ports.slice(1).map((p, i) => this.#spawn(i + 1, p)))
  }

  #spawn(index: number, ports: Record<number, MessagePort>): Promise<void> {
    // Told to stop while starting: the threads not yet started never are.
    if (this.#closing) return Promise.resolve()
    const worker = new Worker(THREAD, {
      workerData: { model: this.#model, index, count: this.#count, ports },
      transferList: Object.values(ports),
    })
    this.#workers[index] = worker
    const started = Date.now()
    for (const words of this.#history) worker.postMessage({ t: 'cli', words } satisfies PoolMessage)
    return new Promise((resolve, reject) => {
      let ready = false
      worker.on('message', (m: WorkerMessage) => {
        if (m.t === 'ready') {
          ready = true
          resolve()
        } else if (m.t === 'stats') this.#got(m.id, m.stats)
      })
      worker.on('error', (err) => this.#logger.error(`worker ${index} failed: ${err.stack ?? err.message}`))
      worker.on('exit', (code) => {
        if (this.#workers[index] === worker) this.#workers[index] = undefined
        for (const id of this.#asks.keys()) this.#got(id, undefined)
        if (!ready) reject(new Error(`worker ${index} exited (${code}) before listening`))
        if (this.#closing) return
        // The daemon layer's rule for children: again at once after a long life, else after growing waits.
        const lived = Date.now() - started
        this.#deaths[index] = lived >= STABLE_MS ? 0 : (this.#deaths[index] as number) + 1
        const delay = Math.min(MAX_RESTART_DELAY_MS, this.#deaths[index] === 0 ? 0 : 250 * 2 ** ((this.#deaths[index] as number) - 1))
        this.#logger.error(`worker ${index} exited (${code}); starting another in ${delay} ms, the others serve meanwhile`)
        setTimeout(() => void this.#restart(index).catch((err: Error) => this.#logger.error(err.message)), delay).unref()
      })
    })
  }

  /** New channels from the restarted worker to every other one. */
  #restart(index: number): Promise<void> {
    if (this.#closing) return Promise.resolve()
    const ports: Record<number, MessagePort> = {}
    for (let j = 0; j < this.#count; j++) {
      if (j === index) continue
      const { port1, port2 } = new MessageChannel()
      ports[j] = port1
      if (j === 0) (this.#main.peers as NonNullable<CachingRouter['peers']>).connect(index, port2)
      else this.#workers[j]?.postMessage({ t: 'peer', index, port: port2 } satisfies PoolMessage, [port2])
    }
    return this.#spawn(index, ports)
  }

  #fanout(words: string[]): void {
    if (words[0] !== 'ban') this.#history.push(words)
    for (const w of this.#workers) w?.postMessage({ t: 'cli', words } satisfies PoolMessage)
  }

  reload(): void {
    for (const w of this.#workers) w?.postMessage({ t: 'reload' } satisfies PoolMessage)
  }

  /** Every worker's counters and storage figures added up (`--metrics`). */
  async summedStats(): Promise<{ counters: Counters; extra: Record<string, number> }> {
    const main = this.#main
    const all = [{ counters: { ...main.counters }, extra: main.cli.extraStats() }, ...(await this.#stats())]
    return { counters: sumCounters(main.counters, all.map((p) => p.counters)), extra: sumFigures(all.map((p) => p.extra)) }
  }

  #stats(): Promise<PeerStats[]> {
    const live = this.#workers.filter((w) => w !== undefined)
    if (live.length === 0) return Promise.resolve([])
    const id = ++this.#nextId
    return new Promise((done) => {
      this.#asks.set(id, { left: live.length, got: [], done })
      for (const w of live) w.postMessage({ t: 'stats', id } satisfies PoolMessage)
    })
  }

  #got(id: number, stats: PeerStats | undefined): void {
    const ask = this.#asks.get(id)
    if (ask === undefined) return
    if (stats !== undefined) ask.got.push(stats)
    if (--ask.left > 0 && stats !== undefined) return
    this.#asks.delete(id)
    ask.done(ask.got)
  }

  /** Every worker drains as the child does, then exits. */
  async close(drainTimeoutMs: number): Promise<void> {
    this.#closing = true
    await Promise.all(
      this.#workers.map(
        (w) =>
          w &&
          new Promise<void>((resolve) => {
            w.once('exit', () => resolve())
            w.postMessage({ t: 'close', drainTimeoutMs } satisfies PoolMessage)
          }),
      ),
    )
  }
}
