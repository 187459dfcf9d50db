/**
 * RFC 9110 §7.6.1: a proxy removes the hop-by-hop fields and every field that `Connection`
 * names before forwarding. Unlike some proxies, we never let `Connection` remove the
 * end-to-end framing or identity fields (Host, Content-Length, X-Forwarded-For, ...): that
 * is a known way to smuggle requests or hide the client's address from the next hop.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

const NEVER_NOMINATED = new Set([
  'host',
  'content-length',
  'content-type',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'cookie',
  'authorization',
  'date',
])

/** Names (lowercase) that must not be forwarded, given the message's `Connection` values. */
export function hopByHopNames(connection: string | string[] | undefined): Set<string> {
  if (connection === undefined) return HOP_BY_HOP
  const names = new Set(HOP_BY_HOP)
  for (const value of Array.isArray(connection) ? connection : [connection]) {
    for (const token of value.split(',')) {
      const name = token.trim().toLowerCase()
      if (name && !NEVER_NOMINATED.has(name)) names.add(name)
    }
  }
  return names
}

/**
 * Copies Node's `rawHeaders` list ([name, value, name, value, ...]) without hop-by-hop fields,
 * keeping the original case and order.
 */
export function stripHopByHop(rawHeaders: readonly string[], connection: string | string[] | undefined): string[] {
  const drop = hopByHopNames(connection)
  const out: string[] = []
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    if (!drop.has(name.toLowerCase())) out.push(name, rawHeaders[i + 1] as string)
  }
  return out
}
