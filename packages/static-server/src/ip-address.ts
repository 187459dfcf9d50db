import { isIP } from 'node:net'
/** Textual IP addresses as numbers: allow/deny masks them, ip_hash hashes their bytes. */
export function ipv4(s: string): bigint {
  return s.split('.').reduce((n, p) => (n << 8n) | BigInt(Number(p)), 0n)
}

export function ipv6(s: string): bigint {
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
