export interface ParsedTarget {
  /** Decoded once, dot segments resolved, slashes merged (merge_slashes on): nginx's $uri. */
  uri: string
  /** The query, undecoded, without `?`: $args. */
  args: string
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * nginx's ngx_http_parse_complex_uri, made stricter. The path is percent-decoded exactly once
 * and dot segments are resolved on the decoded text, so `%2e%2e/` and `..%2f` are resolved (or
 * refused) like `../`; a `..` above the root is a 400, as in nginx. Where nginx is lenient we
 * refuse with 400 (see DIFFERENCES.md): a decoded NUL (nginx too), a backslash (a path separator
 * for anything Windows-minded behind us), bytes that are not valid UTF-8 (overlong forms of `.`
 * and `/` among them), and a malformed `%` escape.
 */
export function parseTarget(target: string, mergeSlashes: boolean): ParsedTarget | undefined {
  let path = target
  let args = ''
  const q = target.indexOf('?')
  if (q >= 0) {
    path = target.slice(0, q)
    args = target.slice(q + 1)
  }
  if (!path.startsWith('/')) return undefined
  const hash = path.indexOf('#')
  if (hash >= 0) path = path.slice(0, hash)
  let decoded: string
  if (path.includes('%') || /[^\x00-\x7f]/.test(path)) {
    const bytes = Buffer.allocUnsafe(path.length)
    let n = 0
    for (let i = 0; i < path.length; i++) {
      const c = path.charCodeAt(i)
      if (c === 0x25) {
        const h = hex(path.charCodeAt(i + 1))
        const l = hex(path.charCodeAt(i + 2))
        if (h < 0 || l < 0) return undefined
        bytes[n++] = h * 16 + l
        i += 2
      } else if (c > 0xff) {
        return undefined
      } else {
        bytes[n++] = c
      }
    }
    try {
      decoded = utf8.decode(bytes.subarray(0, n))
    } catch {
      return undefined
    }
  } else {
    decoded = path
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return undefined
  const uri = normalize(decoded, mergeSlashes)
  return uri === undefined ? undefined : { uri, args }
}

/**
 * absolute-form (RFC 9112 §3.2.2) as ngx_http_parse_request_line reads it: any scheme, a host
 * of letters, digits, `.` and `-` or an IP literal in brackets, an optional port, then the
 * path or query (none means `/`). Userinfo and other bytes in the authority are refused
 * (undefined: 400), as nginx refuses them.
 */
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9.-]*)(?::[0-9]*)?(?=[/?]|$)/

export function splitAbsoluteForm(target: string): { host: string; target: string } | undefined {
  const m = ABSOLUTE_FORM.exec(target)
  if (!m) return undefined
  const rest = target.slice(m[0].length)
  return { host: m[1] as string, target: rest.startsWith('/') ? rest : `/${rest}` }
}

function hex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 65 && c <= 70) return c - 55
  if (c >= 97 && c <= 102) return c - 87
  return -1
}

/** RFC 3986 §5.2.4 on an absolute path; undefined when `..` would climb above `/`. */
export function normalize(path: string, mergeSlashes: boolean): string | undefined {
  if (!path.includes('/.') && !(mergeSlashes && path.includes('//'))) return path
  const segs = path.split('/')
  const out: string[] = []
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i] as string
    const last = i === segs.length - 1
    if (s === '.') {
      if (last) out.push('')
      continue
    }
    if (s === '..') {
      if (out.length === 0) return undefined
      out.pop()
      if (last) out.push('')
      continue
    }
    if (s === '' && mergeSlashes && !last) continue
    out.push(s)
  }
  return `/${out.join('/')}`
}

/** ngx_escape_uri(NGX_ESCAPE_URI): what proxy_pass and redirects write back into a URI. */
export function escapeUri(s: string): string {
  let out = ''
  for (const b of Buffer.from(s, 'utf8')) {
    out += b <= 0x20 || b >= 0x7f || b === 0x22 || b === 0x23 || b === 0x25 || b === 0x3f ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b)
  }
  return out
}
