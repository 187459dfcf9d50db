import { type MessagePort, parentPort, workerData } from 'node:worker_threads'
import { createAccessLog, createLogger } from '@edgestack/common'
import { type AdminDeps, runHere } from '../admin.js'
import type { CliModel } from '../config/model.js'
import { createCachingRouter } from '../server.js'
import type { PoolMessage, WorkerMessage } from './worker-pool.js'

/**
 * A worker thread of `--workers N` (worker-pool.ts starts it): a router on the same listening
 * addresses (a SO_REUSEPORT socket of its own beside worker 0's; the kernel spreads new
 * connections over them by their addresses and ports), linked to the other workers' caches, taking the CLI's state changes from worker 0.
 */
interface Data {
  model: CliModel
  index: number
  count: number
  ports: Record<number, MessagePort>
}

const data = workerData as Data
const parent = parentPort as MessagePort
const post = (m: WorkerMessage) => parent.postMessage(m)

const logger = createLogger({ name: `caching-router[${data.index}]`, format: data.model.logFormat })
// -T is answered by worker 0 only; each store is a share of -s (server.ts).
const router = createCachingRouter({ ...data.model, admin: undefined }, logger, createAccessLog(undefined, { encoding: data.model.accessFormat?.json ? 'latin1' : 'utf8' }), { worker: { index: data.index, count: data.count } })
const peers = router.peers
if (peers === undefined) throw new Error('worker without peers')
for (const [i, port] of Object.entries(data.ports)) peers.connect(Number(i), port)
const deps: AdminDeps = { params: router.params, logger, secret: undefined, vcl: router.vcl, child: () => router.cli }

parent.on('message', (m: PoolMessage) => {
  switch (m.t) {
    case 'peer':
      return peers.connect(m.index, m.port)
    case 'cli':
      void runHere(deps, m.words).then(([status, body]) => {
        if (status !== 200) logger.warn(`${m.words[0]}: ${status} ${body.trim()}`)
      })
      return
    case 'stats':
      return post({ t: 'stats', id: m.id, stats: { counters: { ...router.counters }, extra: router.cli.extraStats() } })
    case 'reload':
      void router.reload().catch((err: Error) => logger.error(`reload: ${err.message}`))
      return
    case 'close':
      void router.close({ drainTimeoutMs: m.drainTimeoutMs }).then(() => {
        post({ t: 'closed' })
        process.exit(0)
      })
  }
})

await router.listen()
post({ t: 'ready' })
