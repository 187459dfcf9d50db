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
 * and everything after. $remote_port follows: a PROXY header's port, a field's `addr:port`, or
 * empty for a field's bare address (ngx_http_variable_remote_port shows nothing for port 0).
 */
export function realIpPhase(st: RequestState): void {
  if (st.realIpSet || st.conf.realIpFrom.length === 0) return
  const peer = st.conn.remoteAddress
  const conf = st.conf
  // The connection's own peer must be trusted, whatever a PROXY header said.
  if (!isIP(peer) || !trusted(conf).check(peer, family(peer))) return
  // Declined without a PROXY header (a listen without proxy_protocol, or UNKNOWN).
  const pp = st.proxyProtocol
  const real = conf.realIpHeader.toLowerCase() !== 'proxy_protocol' ? fromHeader(st, conf) : pp && { addr: pp.remoteAddress, port: String(pp.remotePort) }
  if (real === undefined) return
  st.remoteAddr = real.addr
  st.remotePort = real.port
  st.realIpSet = true
}

/**
 * real_ip_header X-Real-IP / X-Forwarded-For, with real_ip_recursive. Each address may carry a
 * port (`192.0.2.1:8080`, `[2001:db8::1]:8080`), read as ngx_parse_addr_port reads it.
 */
function fromHeader(st: RequestState, conf: LocationConf): { addr: string; port: string } | undefined {
  const value = st.req.header(conf.realIpHeader.toLowerCase())
  if (!value) return undefined
  const list = value.split(',').map((s) => s.trim()).filter(Boolean)
  if (!conf.realIpRecursive) return addrPort(list[list.length - 1] ?? '')
  const from = trusted(conf)
  for (let i = list.length - 1; i >= 0; i--) {
    const a = addrPort(list[i] as string)
    if (!a) return undefined
    if (i === 0 || !from.check(a.addr, family(a.addr))) return a
  }
  return undefined
}

function addrPort(text: string): { addr: string; port: string } | undefined {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(text)
  const addr = m ? (m[1] as string) : text
  const port = m?.[2] ?? ''
  if (!isIP(addr) || (port !== '' && !(Number(port) >= 1 && Number(port) <= 65535))) return undefined
  return { addr, port }
}
