import { BlockList, isIP } from 'node:net'
import type { LocationConf } from './config/model.js'
import type { RequestState } from './request-state.js'

/** Each configuration's set_real_ip_from list, compiled once when first used. */
const trustedOf = new WeakMap<LocationConf, BlockList>()

function trusted(conf: LocationConf): BlockList {
  let bl = trustedOf.get(conf)
  if (bl) return bl
  bl = new BlockList()
  for (const a of conf.realIpFrom) {
    const [addr, bits] = a.split('/') as [string, string | undefined]
    const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4'
    if (bits === undefined) bl.addAddress(addr, type)
    else bl.addSubnet(addr, Number(bits), type)
  }
  trustedOf.set(conf, bl)
  return bl
}

const family = (a: string) => (isIP(a) === 6 ? 'ipv6' : 'ipv4')

/**
 * ngx_http_realip_module runs twice: in the post-read phase with the server's configuration
 * and again in the pre-access phase with the location's, unless the first already replaced
 * the address. So `set_real_ip_from` in a location counts for that location's allow/deny
 * and everything after. A header's address has no port ($remote_port is then empty, as
 * ngx_http_variable_remote_port shows port 0); a PROXY header's comes with its port.
 */
export function realIpPhase(st: RequestState): void {
  if (st.realIpSet || st.conf.realIpFrom.length === 0) return
  const peer = st.conn.remoteAddress
  const conf = st.conf
  // The connection's own peer must be trusted, whatever a PROXY header said.
  if (!isIP(peer) || !trusted(conf).check(peer, family(peer))) return
  let addr: string | undefined
  let port = ''
  if (conf.realIpHeader.toLowerCase() === 'proxy_protocol') {
    // Declined without a PROXY header (a listen without proxy_protocol, or UNKNOWN).
    addr = st.proxyProtocol?.remoteAddress
    port = String(st.proxyProtocol?.remotePort ?? '')
  } else addr = fromHeader(st, conf)
  if (addr === undefined || addr === peer) return
  st.remoteAddr = addr
  st.remotePort = port
  st.realIpSet = true
}

/** real_ip_header X-Real-IP / X-Forwarded-For, with real_ip_recursive. */
function fromHeader(st: RequestState, conf: LocationConf): string | undefined {
  const value = st.req.header(conf.realIpHeader.toLowerCase())
  if (!value) return undefined
  const list = value.split(',').map((s) => s.trim()).filter(Boolean)
  if (!conf.realIpRecursive) {
    const last = list[list.length - 1]
    return last && isIP(last) ? last : undefined
  }
  const from = trusted(conf)
  for (let i = list.length - 1; i >= 0; i--) {
    const a = list[i] as string
    if (!isIP(a)) return undefined
    if (i === 0 || !from.check(a, family(a))) return a
  }
  return undefined
}
