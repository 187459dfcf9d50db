/** One try at a peer, as nginx keeps it in r->upstream_states. */
export interface UpstreamTry {
  addr: string
  status: string
  start: number
  end?: number
  times?: { connected?: number; header?: number }
  /** Bytes received from the peer (head and body). */
  bytes?: number
  /** Body bytes received ($upstream_response_length). */
  bodyBytes?: number
  /** Bytes of the request written to the peer ($upstream_bytes_sent). */
  sent?: number
}

const secs = (ms: number) => (Math.max(0, ms) / 1000).toFixed(3)

/**
 * ngx_http_upstream_addr_variable and its siblings: one value per try joined by ", ", the
 * tries of each proxied pass (after an internal redirect) joined by " : ", "-" where a try
 * has no such time; empty when nothing was proxied.
 */
export function upstreamVariable(groups: readonly (readonly UpstreamTry[])[], name: string): string {
  const one = (t: UpstreamTry): string => {
    const now = t.end ?? Date.now()
    switch (name) {
      case 'upstream_addr':
        return t.addr
      case 'upstream_status':
        return t.status || '-'
      // Not known before the answer is over: "-" in a header (add_header), a time in the log.
      case 'upstream_response_time':
        return t.end === undefined ? '-' : secs(now - t.start)
      case 'upstream_header_time':
        return t.times?.header !== undefined ? secs(t.times.header - t.start) : '-'
      case 'upstream_connect_time':
        return t.times?.connected !== undefined ? secs(t.times.connected - t.start) : '-'
      case 'upstream_response_length':
        return String(t.bodyBytes ?? 0)
      // Counted when the try is over, as nginx does: 0 in a header.
      case 'upstream_bytes_sent':
        return String(t.end === undefined ? 0 : (t.sent ?? 0))
      default:
        return String(t.bytes ?? 0)
    }
  }
  return groups
    .filter((g) => g.length > 0)
    .map((g) => g.map(one).join(', '))
    .join(' : ')
}

/** $upstream_http_NAME: the first field of that name (dashes written as underscores). */
export function fieldValue(fields: readonly string[] | undefined, key: string): string {
  if (!fields) return ''
  for (let i = 0; i < fields.length; i += 2) {
    if ((fields[i] as string).toLowerCase().replaceAll('-', '_') === key) return fields[i + 1] as string
  }
  return ''
}

/** $upstream_cookie_NAME: the value a Set-Cookie gives that cookie (ngx_http_parse_set_cookie_lines). */
export function upstreamCookie(fields: readonly string[] | undefined, key: string): string {
  if (!fields) return ''
  for (let i = 0; i < fields.length; i += 2) {
    if ((fields[i] as string).toLowerCase() !== 'set-cookie') continue
    const v = fields[i + 1] as string
    const semi = v.indexOf(';')
    const pair = semi < 0 ? v : v.slice(0, semi)
    const eq = pair.indexOf('=')
    if (eq >= 0 && pair.slice(0, eq).trim() === key) return pair.slice(eq + 1).trim()
  }
  return ''
}
