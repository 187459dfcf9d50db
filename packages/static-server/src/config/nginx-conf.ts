import { dirname, resolve } from 'node:path'
import { buildModel } from './build-model.js'
import type { NginxModel } from './model.js'
import { openLogs } from './open-logs.js'
import { parseTree } from './parse-tree.js'
import { resolveHosts, withAddresses } from './resolve-hosts.js'

export interface LoadOptions {
  /** -c: the file; relative to the prefix when relative, as nginx resolves it. */
  file: string
  /** -p: the prefix relative paths in the file resolve against. */
  prefix: string
  /** -g: extra main-context directives. */
  globals?: string[]
}

/**
 * Reads an nginx.conf as nginx 1.22 does and returns the model static-server runs. Every
 * error is an NginxConfError worded like nginx's own `[emerg] ... in FILE:LINE`, thrown
 * before any port is bound.
 */
export async function loadNginxConf(opts: LoadOptions): Promise<NginxModel> {
  const prefix = resolve(opts.prefix)
  const file = resolve(prefix, opts.file)
  const tree = await parseTree(file, dirname(file), opts.globals ?? [])
  const { model, hosts, logs } = buildModel(tree, { prefix, file })
  const addresses = await resolveHosts(hosts)
  await openLogs(logs, file)
  return withAddresses(model, addresses)
}
