import { isIP } from 'node:net'
import { NginxConfError } from './config/errors.js'
import type { AccessRule } from './config/model.js'
import type { Directive } from './config/parse-tree.js'
import { ipv4, ipv6 } from './ip-address.js'
import type { RequestState } from './request-state.js'

/**
 * `allow` / `deny` (ngx_http_access_module): an address, a CIDR block (v4 or v6), `unix:` or
 * `all`. As ngx_ptocidr, host bits set below the prefix are dropped (nginx warns, we do not);
 * anything else is nginx's `invalid parameter`.
 */
export function accessRule(d: Directive): AccessRule {
  const deny = d.name === 'deny'
  const a = d.args[0] as string
  if (a === 'all') return { deny, family: 'all', addr: 0n, mask: 0n }
  if (a === 'unix:') return { deny, family: 'unix', addr: 0n, mask: 0n }
  const bad = () => new NginxConfError(`invalid parameter "${a}"`, d.file, d.line, d.name)
  const slash = a.indexOf('/')
  const host = slash < 0 ? a : a.slice(0, slash)
  const v = isIP(host)
  if (v === 0) throw bad()
  const width = v === 4 ? 32 : 128
  const bitsText = slash < 0 ? String(width) : a.slice(slash + 1)
  if (!/^\d+$/.test(bitsText) || Number(bitsText) > width) throw bad()
  const bits = BigInt(bitsText)
  const mask = ((1n << bits) - 1n) << (BigInt(width) - bits)
  const addr = v === 4 ? ipv4(host) : ipv6(host)
  return { deny, family: v === 4 ? 'ipv4' : 'ipv6', addr: addr & mask, mask }
}

/**
 * ngx_http_access_handler: the client's family picks the rules (an IPv4-mapped IPv6 client is
 * checked against the IPv4 ones when there are any), and the first that matches decides.
 * Undefined: no rule matched (NGX_DECLINED).
 */
export function accessDenied(rules: readonly AccessRule[], client: string): boolean | undefined {
  const v = isIP(client)
  let family: AccessRule['family'] = v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : 'unix'
  let addr = v === 4 ? ipv4(client) : v === 6 ? ipv6(client) : 0n
  if (v === 6 && addr >> 32n === 0xffffn && rules.some((r) => r.family === 'ipv4')) {
    family = 'ipv4'
    addr &= 0xffffffffn
  }
  for (const r of rules) {
    if (r.family !== 'all' && r.family !== family) continue
    if ((addr & r.mask) === r.addr) return r.deny
  }
  return undefined
}

/**
 * The access phase (after the location's rewrites, before try_files and content), run again
 * after every internal redirect as nginx runs it. A deny is 403, through error_page. With the
 * access module the only access-phase module we have, `satisfy any` answers as `all` does;
 * only nginx's `access forbidden by rule` line is written under `all` alone.
 */
export function accessPhase(st: RequestState, logError: (msg: string) => void): number | undefined {
  const rules = st.conf.access
  if (rules.length === 0 || accessDenied(rules, st.remoteAddr) !== true) return undefined
  if (st.conf.satisfy === 'all') {
    const r = st.req
    logError(`access forbidden by rule, client: ${st.remoteAddr}, server: ${st.server.primaryName}, request: "${r.method} ${r.target} HTTP/${r.version}", host: "${st.host}"`)
  }
  return 403
}
