import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { deepFreeze } from '@edgestack/common'
import type { HostCheck } from './directive-values.js'
import { NginxConfError } from './errors.js'
import type { NginxModel } from './model.js'

/**
 * The names nginx resolves while it reads its file (listen addresses, upstream servers, a
 * proxy_pass host that names no upstream block): a name that does not resolve stops start-up
 * with nginx's `host not found in ...`, at the line that named it. Resolved in file order, all
 * at once; the first failure in that order is the one reported. The result is every address
 * of each name, in the resolver's order.
 */
export async function resolveHosts(hosts: readonly HostCheck[]): Promise<ReadonlyMap<string, string[]>> {
  const results = await Promise.all(
    hosts.map((h) =>
      lookup(h.host, { all: true }).then(
        (all) => all.map((a) => a.address),
        () => undefined,
      ),
    ),
  )
  const failed = hosts.find((_, i) => !results[i])
  if (failed) throw new NginxConfError(`host not found in ${failed.problem}`, failed.file, failed.line, failed.directive)
  return new Map(hosts.map((h, i) => [h.host, results[i] as string[]]))
}

/**
 * ngx_http_upstream_server: a server named by host name is one peer per address the name
 * had when the file was read (nginx resolves it once, not per connection), so a name with
 * several addresses (a compose service scaled to N, a swarm service) is N peers that
 * ip_hash and hash can stick to. The name as written stays the peer's `name`.
 */
export function withAddresses(model: NginxModel, addresses: ReadonlyMap<string, string[]>): NginxModel {
  let changed = false
  const upstreams = new Map(
    [...model.upstreams].map(([key, u]) => {
      if (u.servers.every((s) => isIP(s.host) !== 0 || !addresses.has(s.host))) return [key, u]
      changed = true
      return [key, { ...u, servers: u.servers.flatMap((s) => (isIP(s.host) !== 0 ? [s] : (addresses.get(s.host) ?? [s.host]).map((host) => ({ ...s, host })))) }]
    }),
  )
  return changed ? deepFreeze({ ...model, upstreams }) : model
}
