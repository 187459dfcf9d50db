import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type AccessLog, createLogger, type HostPort } from '@edgestack/common'
import { type CachingRouter, createCachingRouter } from '../src/server.js'
import { type TestClock, testClock } from './router-harness.js'

export interface VclRouter {
  router: CachingRouter
  port: number
  /** Every listener's port in order (`port` is the first; a PROXY listener comes second). */
  ports: number[]
  url: string
  /** The admin CLI (-T) address, no secret. */
  admin: HostPort
  /** Where the VCL file was written (`boot.vcl`); tests may put more files here. */
  dir: string
  /** The router's clock: `advance` lets a TTL pass without waiting. */
  clock: TestClock
  stop(): Promise<void>
}

/**
 * The router as `caching-router -f boot.vcl -a 127.0.0.1:0 -T 127.0.0.1:0` runs it, as a
 * library: `text` is written to a file in a fresh temp folder and loaded from there.
 */
export async function startVclRouter(
  text: string,
  fileName = 'boot.vcl',
  params: Record<string, string> = {},
  opts: { proxyListener?: boolean; clock?: TestClock } = {},
): Promise<VclRouter> {
  const dir = await mkdtemp(join(tmpdir(), 'router-vcl-'))
  const file = join(dir, fileName)
  await writeFile(file, text)
  const access: AccessLog = { write: () => {}, close: async () => {} }
  const clock = opts.clock ?? testClock()
  const router = createCachingRouter(
    {
      listen: [
        { address: { host: '127.0.0.1', port: 0 }, proxy: false },
        ...(opts.proxyListener ? [{ address: { host: '127.0.0.1', port: 0 }, proxy: true }] : []),
      ],
      vcl: { kind: 'file', path: file },
      storageBytes: 16 * 1024 * 1024,
      params: Object.entries(params),
      identity: 'test',
      admin: { address: { host: '127.0.0.1', port: 0 }, secretFile: undefined },
      logHandling: false,
    },
    createLogger({ name: 'caching-router', level: 'error' }),
    access,
    { clock: clock.now },
  )
  let addresses: HostPort[] = []
  try {
    addresses = (await router.listen()) as HostPort[]
  } catch (err) {
    await router.close({ drainTimeoutMs: 0 })
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  const ports = addresses.map((a) => a.port)
  const port = ports[0] as number
  return {
    router,
    port,
    ports,
    url: `http://127.0.0.1:${port}`,
    admin: router.adminAddress as HostPort,
    dir,
    clock,
    async stop() {
      await router.close({ drainTimeoutMs: 500 })
      await rm(dir, { recursive: true, force: true })
    },
  }
}
