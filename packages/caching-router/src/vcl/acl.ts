import { isIP } from 'node:net'
import type { VclIp } from './context.js'

interface AclRule {
  readonly family: 4 | 6
  readonly network: bigint
  readonly bits: number
  readonly negated: boolean
}

/**
 * A compiled `acl`. As in varnish (vcc_acl.c), the most specific entry containing the address
 * decides, so `"10.0.0.0"/8; ! "10.1.0.0"/16;` admits 10.2.3.4 and refuses 10.1.2.3.
 */
export class Acl {
  readonly name: string
  #rules: AclRule[]

  constructor(name: string, rules: AclRule[]) {
    this.name = name
    this.#rules = [...rules].sort((a, b) => b.bits - a.bits)
  }

  match(ip: VclIp | undefined): boolean {
    if (!ip) return false
    const parsed = parseIp(ip.address)
    if (!parsed) return false
    for (const r of this.#rules) {
      if (r.family !== parsed.family) continue
      const width = r.family === 4 ? 32 : 128
      const shift = BigInt(width - r.bits)
      if (parsed.value >> shift === r.network >> shift) return !r.negated
    }
    return false
  }
}

/** Builds one rule; returns an error text (varnish's wording where it has one) when invalid. */
export function aclRule(address: string, mask: number | undefined, negated: boolean): AclRule | string {
  const parsed = parseIp(address)
  if (!parsed) return `'${address}' is not an IP address`
  const width = parsed.family === 4 ? 32 : 128
  const bits = mask ?? width
  if (!Number.isInteger(bits) || bits < 0 || bits > width) return `Too wide mask (/${bits}) for IPv${parsed.family}`
  const shift = BigInt(width - bits)
  const network = (parsed.value >> shift) << shift
  // varnish warns and masks when host bits are set ("Address/Netmask mismatch, changed to ..."); so do we.
  return { family: parsed.family, network, bits, negated }
}

/** IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, as node reports dual-stack peers) count as IPv4. */
export function parseIp(text: string): { family: 4 | 6; value: bigint } | undefined {
  let s = text
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1)
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(s)) s = s.slice(7)
  const family = isIP(s)
  if (family === 4) {
    let v = 0n
    for (const part of s.split('.')) v = (v << 8n) | BigInt(Number(part))
    return { family: 4, value: v }
  }
  if (family === 6) {
    const zone = s.indexOf('%')
    if (zone !== -1) s = s.slice(0, zone)
    let head = s
    let tail = ''
    const dbl = s.indexOf('::')
    if (dbl !== -1) {
      head = s.slice(0, dbl)
      tail = s.slice(dbl + 2)
    }
    const words = (part: string): number[] => {
      if (part === '') return []
      const out: number[] = []
      for (const w of part.split(':')) {
        if (w.includes('.')) {
          const b = w.split('.').map(Number)
          out.push(((b[0] as number) << 8) | (b[1] as number), ((b[2] as number) << 8) | (b[3] as number))
        } else out.push(Number.parseInt(w, 16))
      }
      return out
    }
    const h = words(head)
    const t = words(tail)
    const all = dbl === -1 ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t]
    let v = 0n
    for (const w of all) v = (v << 16n) | BigInt(w)
    return { family: 6, value: v }
  }
  return undefined
}
