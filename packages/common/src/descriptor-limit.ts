import { readFile } from 'node:fs/promises'

/** Descriptors kept back from clients: stdio, listeners, libuv's own, log files, the admin port. */
export const DESCRIPTOR_RESERVE = 32

/**
 * The process's RLIMIT_NOFILE soft limit, read from /proc/self/limits at start-up (Linux; no
 * native addon needed). Read from inside the process, it is the limit that applies: Node raises
 * the soft limit to the hard one when it starts, and `ulimit -n` / `prlimit --nofile` set both.
 * Undefined where there is no /proc (or the limit is unlimited): callers keep their default.
 */
export async function openFileLimit(limitsFile = '/proc/self/limits'): Promise<number | undefined> {
  let text: string
  try {
    text = await readFile(limitsFile, 'utf8')
  } catch {
    return undefined
  }
  const line = text.split('\n').find((l) => l.startsWith('Max open files'))
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0]
  return soft !== undefined && /^\d+$/.test(soft) ? Number(soft) : undefined
}

/**
 * How many clients fit in `limit` descriptors when each costs `perClient` (a TLS client and its
 * backend connection: two), after the reserve. At least 1.
 */
export function connectionBudget(limit: number, perClient = 2): number {
  return Math.max(1, Math.floor((limit - DESCRIPTOR_RESERVE) / perClient))
}
