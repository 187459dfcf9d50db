/**
 * stunnel's SNI pattern match (`matches_wildcard` in its ctx.c): a pattern starting with `*`
 * matches any server name ending with the rest of it, so `*.example.com` matches
 * `a.example.com` and `a.b.example.com` but not `example.com`; otherwise the names must be
 * equal. Case never matters (RFC 6066 §3 host names are case-insensitive).
 */
export function matchesServerName(pattern: string, serverName: string): boolean {
  const name = serverName.toLowerCase()
  if (pattern.startsWith('*')) {
    const suffix = pattern.slice(1)
    return name.length >= suffix.length && name.endsWith(suffix)
  }
  return name === pattern
}

/** The first virtual host whose pattern matches, in config order; else the primary. */
export function pickByServerName<T>(
  primary: T,
  virtualHosts: readonly { readonly pattern: string; readonly service: T }[],
  serverName: string | false | undefined | null,
): T {
  if (!serverName) return primary
  for (const v of virtualHosts) if (matchesServerName(v.pattern, serverName)) return v.service
  return primary
}
