import net from 'node:net'
import { freePort } from '@edgestack/common/test/ports'


/** True when something accepts a TCP connection on 127.0.0.1:port. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.setTimeout(1000)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('timeout', () => {
      s.destroy()
      resolve(false)
    })
    s.once('error', () => resolve(false))
  })
}

/** Readiness by connecting, not by sleeping: retried until the deadline, then rejected. */
export async function waitForPort(port: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    if (await accepts(port)) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`was not ready in time: nothing accepted connections on 127.0.0.1:${port}`)
}

/**
 * A loopback port of [from, to) that nothing listens on right now, not in `taken` (which it
 * joins): for tests given a fixed range for the programs that cannot take port 0.
 */
export async function portInRange(from: number, to: number, taken: Set<number>): Promise<number> {
  for (let p = from; p < to; p++) {
    if (taken.has(p) || (await accepts(p))) continue
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer()
      s.once('error', () => resolve(false))
      s.listen(p, '127.0.0.1', () => s.close(() => resolve(true)))
    })
    if (!free) continue
    taken.add(p)
    return p
  }
  throw new Error(`no free port in ${from}-${to - 1}`)
}

export { freePort }
