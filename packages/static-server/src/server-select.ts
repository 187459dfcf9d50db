import type { BoundedRegex } from '@edgestack/common'
import type { ServerModel } from './config/model.js'
import { regexExec } from './regex-match.js'

/** The servers sharing one listening address, with the lookup tables built at start-up. */
export interface VirtualHosts {
  defaultServer: ServerModel
  exact: ReadonlyMap<string, ServerModel>
  /** `*.example.com` / `.example.com`, longest suffix first. */
  leading: readonly { suffix: string; alsoBare: boolean; server: ServerModel }[]
  /** `www.example.*`, longest prefix first. */
  trailing: readonly { prefix: string; server: ServerModel }[]
  regex: readonly { re: BoundedRegex; server: ServerModel }[]
}

export function buildVirtualHosts(servers: readonly ServerModel[], isDefault: (s: ServerModel) => boolean): VirtualHosts {
  const exact = new Map<string, ServerModel>()
  const leading: { suffix: string; alsoBare: boolean; server: ServerModel }[] = []
  const trailing: { prefix: string; server: ServerModel }[] = []
  const regex: { re: BoundedRegex; server: ServerModel }[] = []
  for (const s of servers) {
    for (const n of s.names) {
      if (n.kind === 'exact') {
        if (!exact.has(n.name)) exact.set(n.name, s)
      } else if (n.kind === 'prefix') {
        leading.push({ suffix: n.suffix, alsoBare: n.alsoBare, server: s })
      } else if (n.kind === 'suffix') trailing.push({ prefix: n.prefix, server: s })
      else regex.push({ re: n.re, server: s })
    }
  }
  leading.sort((a, b) => b.suffix.length - a.suffix.length)
  trailing.sort((a, b) => b.prefix.length - a.prefix.length)
  const defaultServer = servers.find(isDefault) ?? (servers[0] as ServerModel)
  return { defaultServer, exact, leading, trailing, regex }
}

/**
 * nginx's order (ngx_http_find_virtual_server): exact name, longest leading wildcard,
 * longest trailing wildcard, first matching regex, then the address's default server.
 */
export function selectServer(v: VirtualHosts, host: string): { server: ServerModel; captures?: RegExpExecArray } {
  // A server_name regex past the match limits throws RegexMatchFailed: nginx closes the
  // connection without an answer (ngx_http_validate_host's caller gives up on the request).
  // `server_name ""` is the server for requests without a Host (HTTP/1.0).
  if (host === '') return { server: v.exact.get('') ?? v.defaultServer }
  const e = v.exact.get(host)
  if (e) return { server: e }
  for (const l of v.leading) {
    if (host.endsWith(l.suffix) || (l.alsoBare && host === l.suffix.slice(1))) {
      return { server: l.server }
    }
  }
  for (const t of v.trailing) if (host.startsWith(t.prefix)) return { server: t.server }
  for (const r of v.regex) {
    const m = regexExec(r.re, host)
    if (m) return { server: r.server, captures: m }
  }
  return { server: v.defaultServer }
}

/**
 * The Host field as nginx validates it (ngx_http_validate_host): lower-cased, port and a
 * trailing dot removed; undefined (400) for `/`, `\`, NUL or `..` in it. Stricter than nginx,
 * a byte above 0x7e is a 400 too (nginx keeps it as it is): a host name on the wire is ASCII
 * (IDNA), and a latin1-read byte would neither lower-case nor print back as nginx's would.
 */
export function normalizeHost(raw: string | undefined): string | undefined {
  if (raw === undefined) return ''
  for (let i = 0; i < raw.length; i++) if (raw.charCodeAt(i) > 0x7e) return undefined
  let h = raw.trim().toLowerCase()
  if (h.startsWith('[')) {
    const end = h.indexOf(']')
    if (end < 0) return undefined
    h = h.slice(0, end + 1)
  } else {
    const colon = h.indexOf(':')
    if (colon >= 0) h = h.slice(0, colon)
  }
  if (h.endsWith('.')) h = h.slice(0, -1)
  // An empty name (`Host:`, `Host: :80`) is invalid to nginx's ngx_http_validate_host too.
  if (h === '' || h.includes('/') || h.includes('\\') || h.includes('\0') || h.includes('..') || h.startsWith('.')) return undefined
  return h
}
