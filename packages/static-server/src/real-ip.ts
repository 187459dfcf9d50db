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

/**
 * ngx_http_realip_module runs twice: in the post-read phase with the server's configuration
 * and again in the pre-access phase with the location's, unless the first already replaced
 * the address. So `set_real_ip_from` in a location counts for that location's allow/deny
 * and everything after.
 */
export function realIpPhase(st: RequestState): void {
  if (st.realIpSet || st.conf.realIpFrom.length === 0) return
  const addr = realClient(st, st.conf)
  if (addr === st.req.remoteAddress) return
  st.remoteAddr = addr
  st.realIpSet = true
}

/** set_real_ip_from / real_ip_header / real_ip_recursive. */
function realClient(st: RequestState, conf: LocationConf): string {
  const req = st.req
  const peer = req.remoteAddress
  const list0 = trusted(conf)
  const type = (a: string) => (isIP(a) === 6 ? 'ipv6' : 'ipv4')
  if (!isIP(peer) || !list0.check(peer, type(peer))) return peer
  const name = conf.realIpHeader.toLowerCase()
  const value = name === 'proxy_protocol' ? undefined : req.header(name)
  if (!value) return peer
  const list = value.split(',').map((s) => s.trim()).filter(Boolean)
  if (!conf.realIpRecursive) {
    const last = list[list.length - 1]
    return last && isIP(last) ? last : peer
  }
  for (let i = list.length - 1; i >= 0; i--) {
    const a = list[i] as string
    if (!isIP(a)) return peer
    if (i === 0 || !list0.check(a, type(a))) return a
  }
  return peer
}
