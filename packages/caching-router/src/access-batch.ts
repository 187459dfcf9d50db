import type { AccessLog } from '@edgestack/common'

/**
 * Gathers the access lines of one event-loop turn into one write: a line per request written
 * on its own costs a system call per cache hit, more than the hit itself (varnishd leaves the
 * log to varnishncsa, out of its request path).
 */
export function batchAccessLog(log: AccessLog): AccessLog {
  let pending: string[] = []
  let scheduled = false
  const flush = () => {
    scheduled = false
    if (pending.length === 0) return
    const lines = pending
    pending = []
    log.write(lines.join('\n'))
  }
  return {
    write(line) {
      pending.push(line)
      if (!scheduled) {
        scheduled = true
        setImmediate(flush)
      }
    },
    async close() {
      flush()
      await log.close()
    },
  }
}
