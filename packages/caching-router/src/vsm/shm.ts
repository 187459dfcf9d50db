import { mkdir } from 'node:fs/promises'
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import { type HostPort, type Logger, StartupError } from '@edgestack/common'
import type { TxLog } from '../vsl-records.js'
import { ChildCounters, type CountedChild } from './vsc-publisher.js'
import { VslLog } from './vsl.js'
import { VsmSet } from './vsm.js'

/**
 * The manager's set under `-n DIR` (mgt_main.c): made before any child starts, so that a
 * directory the router cannot write stops it at start with one line (exit 1), never later.
 * `Arg -i` (readers start at the manager's segments), and `-S`/`-T` for `varnishadm -n DIR`.
 */
export async function openManagerShm(workdir: string, o: { identity?: string; secretFile?: string; admin?: HostPort }): Promise<VsmSet> {
  const dir = resolve(workdir)
  await mkdir(dir, { recursive: true }).catch((err: Error) => {
    throw new StartupError(`-n ${workdir}: ${err.message}`, { cause: err })
  })
  const set = await VsmSet.create(dir, '_.vsm_mgt')
  try {
    await set.addArg('-i', o.identity ?? hostname())
    if (o.secretFile !== undefined) await set.addArg('-S', resolve(o.secretFile))
    if (o.admin !== undefined && o.admin.port !== 0) await set.addArg('-T', `${o.admin.host} ${o.admin.port}\n`)
  } catch (err) {
    throw new StartupError(`-n ${workdir}: cannot write the shared memory: ${(err as Error).message}`, { cause: err })
  }
  return set
}

/** A serving child's set: made afresh (a new index with this process's pid) each time one starts serving. */
export interface ChildShm {
  readonly set: VsmSet
  readonly vsl: VslLog
  readonly vsc: ChildCounters
  close(): Promise<void>
}

/**
 * `_.vsm_child` as varnishd's child makes it when it starts (cache_main.c): the `Log` segment
 * of `-l` bytes and the counters. A child that takes a dead one's place makes a new set under
 * the same name: readers see the index change and a live pid, and attach again (as to a
 * restarted varnishd child).
 */
export async function openChildShm(workdir: string, logBytes: number, child: CountedChild & { readonly txLog: TxLog }, logger: Logger): Promise<ChildShm> {
  const set = await VsmSet.create(resolve(workdir), '_.vsm_child')
  try {
    const vsl = await VslLog.create(set, logBytes)
    let failed = false
    vsl.onError = (err) => {
      // Once: a full disk later on must not flood the log, nor stop serving.
      if (!failed) logger.warn(`shared memory: log records not written: ${err.message}`)
      failed = true
    }
    // From here on (as soon as readers can find the segment) every transaction writes its records.
    child.txLog.log = vsl
    const vsc = await ChildCounters.start(set, child, logger)
    return {
      set,
      vsl,
      vsc,
      async close() {
        child.txLog.log = undefined
        await vsl.close()
        await vsc.close()
      },
    }
  } catch (err) {
    throw new StartupError(`-n ${workdir}: cannot write the shared memory: ${(err as Error).message}`, { cause: err })
  }
}
