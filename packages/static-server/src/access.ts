import { isIP } from 'node:net'
import { NginxConfError } from './config/errors.js'
import type { AccessRule } from './config/model.js'
import type { Directive } from './config/parse-tree.js'
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

/** $binary_remote_addr: the address's 4 or 16 bytes, one character each (a unix peer as it is). */
export function binaryAddress(addr: string): string {
  const v = isIP(addr)
  if (v === 0) return addr
  let n = v === 4 ? ipv4(addr) : ipv6(addr)
  const bytes: number[] = []
  for (let i = v === 4 ? 4 : 16; i > 0; i--) {
    bytes.unshift(Number(n & 0xffn))
    n >>= 8n
  }
  return String.fromCharCode(...bytes)
}

function ipv4(s: string): bigint {
  return s.split('.').reduce((n, p) => (n << 8n) | BigInt(Number(p)), 0n)
}

function ipv6(s: string): bigint {
  // A dotted tail (`::ffff:1.2.3.4`) is two more groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s)
  let text = s
  if (dotted) {
    const v4 = ipv4(dotted[1] as string)
    text = `${s.slice(0, dotted.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`
  }
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined]
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
  return groups.reduce((n, g) => (n << 16n) | BigInt(Number.parseInt(g, 16)), 0n)
}
