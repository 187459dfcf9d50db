import { isIP } from 'node:net'
import { NginxConfError } from './config/errors.js'
import type { AccessRule } from './config/model.js'
import type { Directive } from './config/parse-tree.js'
import { ipv4, ipv6 } from './ip-address.js'
import { type AccessResult, type AuthLog, authBasicPhase } from './auth-basic.js'
import { logContext } from './log-context.js'
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

/** ngx_http_access_handler's answer: OK on an allow, 403 on a deny, DECLINED when no rule matched. */
function accessModule(st: RequestState, log: AuthLog): AccessResult {
  const rules = st.conf.access
  const denied = rules.length === 0 ? undefined : accessDenied(rules, st.remoteAddr)
  if (denied === undefined) return 'declined'
  if (!denied) return 'ok'
  // ngx_http_access_found logs under `satisfy all`; under `any` the post-access phase does.
  if (st.conf.satisfy === 'all') log('error', `access forbidden by rule${logContext(st)}`)
  return 403
}

/**
 * ngx_http_core_access_phase and ngx_http_core_post_access_phase over the access-phase
 * modules in nginx's order (access, then auth_basic: the phase runs its handlers in reverse
 * of their registration), run again after every internal redirect as nginx runs it.
 * `satisfy all`: each must say OK or DECLINED, the first refusal answers. `satisfy any`: the
 * first OK lets the request through (and drops a WWW-Authenticate already made); otherwise
 * a 401 outranks a 403. Undefined: go on to the content phase; a number goes through error_page.
 */
export async function accessPhase(st: RequestState, log: AuthLog): Promise<number | undefined> {
  const any = st.conf.satisfy === 'any'
  let code = 0
  for (let i = 0; i < 2; i++) {
    const rc = i === 0 ? accessModule(st, log) : await authBasicPhase(st, log)
    if (rc === 'declined') continue
    if (!any) {
      if (rc === 'ok') continue
      return rc
    }
    if (rc === 'ok') {
      dropChallenge(st)
      return undefined
    }
    if (rc === 401 || rc === 403) {
      if (code !== 401) code = rc
      continue
    }
    return rc
  }
  if (code === 403) log('error', `access forbidden by rule${logContext(st)}`)
  return code === 0 ? undefined : code
}

function dropChallenge(st: RequestState): void {
  const c = st.carried
  for (let i = c.length - 2; i >= 0; i -= 2) if ((c[i] as string) === 'WWW-Authenticate') c.splice(i, 2)
}
