const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * ngx_http_parse_unsafe_uri on a URI an SSI include (or a backend) names, as latin1 bytes:
 * split at the first `?`, refused when empty, starting with `?`, holding a NUL or a `..`
 * segment; percent-escapes decoded once and the result checked again. The path comes back
 * decoded (UTF-8), as the phases keep $uri; undefined when unsafe or not UTF-8.
 */
export function unsafeUri(uri: string): { path: string; args: string } | undefined {
  let path = uri
  let args = ''
  for (;;) {
    if (path === '' || path[0] === '?') return undefined
    if (path[0] === '.' && path[1] === '.' && (path.length === 2 || path[2] === '/')) return undefined
    let quoted = false
    for (let i = 0; i < path.length; i++) {
      const c = path[i] as string
      if (c === '%') {
        quoted = true
        continue
      }
      if (c === '?') {
        args = path.slice(i + 1)
        path = path.slice(0, i)
        break
      }
      if (c === '\0') return undefined
      if (c === '/' && path[i + 1] === '.' && path[i + 2] === '.' && (i + 3 === path.length || path[i + 3] === '/')) return undefined
    }
    if (!quoted) break
    const again = path.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16)))
    if (again === path) break
    path = again
  }
  try {
    return { path: UTF8.decode(Buffer.from(path, 'latin1')), args }
  } catch {
    return undefined
  }
}
