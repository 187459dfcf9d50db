import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter'
import { StartupError, type Logger } from '@edgestack/common'
import { Redis } from 'ioredis'

/** What socket.io's `Server#adapter()` takes. */
export type AdapterConstructor = ReturnType<typeof createShardedAdapter> | ReturnType<typeof createAdapter>

export interface RedisLink {
  adapter: AdapterConstructor
  /** `sharded` (SSUBSCRIBE/SPUBLISH, Redis >= 7.0) or `classic` (SUBSCRIBE/PUBLISH). */
  mode: 'sharded' | 'classic'
  /** The server's `redis_version`, as INFO reports it. */
  version: string
  close(): Promise<void>
}

export interface RedisLinkOptions {
  /** `redis://[user:pass@]host:port[/db]`. */
  url: string
  /** How long start-up waits for the first connection before giving up. */
  connectTimeoutMs?: number
}

/**
 * Connects the two clients socket.io's Redis adapter needs (one publishes, one subscribes) and
 * picks the adapter the server supports: the sharded one on Redis 7.0 and later, which socket.io
 * recommends for new deployments, the classic one before. ioredis rather than `redis`: the
 * adapter's documentation warns that `redis` may not restore subscriptions after a reconnection,
 * and ioredis re-issues SSUBSCRIBE on its own (event_handler.js, `autoResubscribe`).
 *
 * While Redis is away the instance keeps serving its own clients: the publisher has no offline
 * queue, so a broadcast fails its publish at once and socket.io's ClusterAdapter still delivers it
 * locally (cluster-adapter.js `broadcast`); the subscriber keeps its queue and re-subscribes when
 * Redis returns. The outage is logged once, and so is the recovery.
 */
export async function connectRedis(opts: RedisLinkOptions, logger: Logger): Promise<RedisLink> {
  const where = redactedUrl(opts.url)
  let down = false
  const watch = (client: Redis) => {
    client.on('error', (err: NodeJS.ErrnoException) => {
      if (down) return
      down = true
      logger.warn(`redis ${where}: ${err.code ?? err.message}; broadcasts reach this instance's clients only until it is back`)
    })
    client.on('ready', () => {
      if (!down) return
      down = false
      logger.info(`redis ${where} is back: broadcasts reach every instance again`)
    })
    return client
  }
  const common = { lazyConnect: true, connectionName: 'edgestack-demo-app' }
  const pub = watch(new Redis(opts.url, { ...common, enableOfflineQueue: false }))
  // null: a queued (S)SUBSCRIBE waits for the reconnection instead of failing after 20 tries
  // (the adapter does not catch those promises; a rejection would end the process).
  const sub = watch(new Redis(opts.url, { ...common, maxRetriesPerRequest: null }))
  const close = async () => {
    pub.disconnect()
    sub.disconnect()
  }
  try {
    const timeout = opts.connectTimeoutMs ?? 30_000
    await withTimeout(Promise.all([pub.connect(), sub.connect()]), timeout, `redis ${where}: no connection in ${timeout / 1000} s`)
    const version = /^redis_version:(\S+)/m.exec(await pub.info('server'))?.[1] ?? '0'
    const sharded = Number(version.split('.')[0]) >= 7
    return {
      adapter: sharded ? createShardedAdapter(pub, sub) : createAdapter(pub, sub),
      mode: sharded ? 'sharded' : 'classic',
      version,
      close,
    }
  } catch (err) {
    await close()
    throw err instanceof StartupError ? err : new StartupError(`redis ${where}: ${(err as Error).message}`, { cause: err })
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StartupError(message)), ms)
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

/** The URL as logs may show it: without a password. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.href.replace(/\/$/, '')
  } catch {
    return url
  }
}
