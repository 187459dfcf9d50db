import { lookup } from 'node:dns/promises'
import type { HostCheck } from './directive-values.js'
import { NginxConfError } from './errors.js'

/**
 * The names nginx resolves while it reads its file (listen addresses, upstream servers, a
 * proxy_pass host that names no upstream block): a name that does not resolve stops start-up
 * with nginx's `host not found in ...`, at the line that named it. Resolved in file order, all
 * at once; the first failure in that order is the one reported.
 */
export async function resolveHosts(hosts: readonly HostCheck[]): Promise<void> {
  const results = await Promise.all(hosts.map((h) => lookup(h.host).then(() => true, () => false)))
  const failed = hosts.find((_, i) => !results[i])
  if (failed) throw new NginxConfError(`host not found in ${failed.problem}`, failed.file, failed.line, failed.directive)
}
