import { isIP, type Socket } from 'node:net'
import { EdgeError } from './errors.js'

/**
 * The PROXY protocol (HAProxy's spec, versions 1 and 2), as stunnel writes it with
 * `protocol = proxy` and varnishd reads it on `-a addr,PROXY` and nginx on `listen ... proxy_protocol`.
 */

export interface Endpoint {
  address: string
  port: number
}

export interface ProxyHeader {
  version: 1 | 2
  /** LOCAL (v2 only) means a health check from the proxy itself: use the socket's own addresses. */
  command: 'PROXY' | 'LOCAL'
  family: 'TCP4' | 'TCP6' | 'UNKNOWN'
  source?: Endpoint
  destination?: Endpoint
}

export type ProxyParseResult =
  | { kind: 'incomplete' }
  | { kind: 'ok'; header: ProxyHeader; length: number }
  | { kind: 'invalid'; reason: string }

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
/** The spec's bound: "PROXY UNKNOWN ffff:...:ffff ffff:...:ffff 65535 65535\r\n". */
const V1_MAX_LENGTH = 107
const V1_PREFIX = Buffer.from('PROXY ')

export function encodeProxyV1(source: Endpoint, destination: Endpoint): Buffer {
  const family = isIP(source.address) === 6 || isIP(destination.address) === 6 ? 'TCP6' : 'TCP4'
  if (family === 'TCP6' && (isIP(source.address) !== 6 || isIP(destination.address) !== 6)) {
    // Mixed families cannot be expressed in one v1 line; the spec's answer is UNKNOWN.
    return Buffer.from('PROXY UNKNOWN\r\n')
  }
  return Buffer.from(
    `PROXY ${family} ${source.address} ${destination.address} ${source.port} ${destination.port}\r\n`,
    'latin1',
  )
}

export function encodeProxyV2(source: Endpoint, destination: Endpoint): Buffer {
  const v6 = isIP(source.address) === 6
  const addrLength = v6 ? 36 : 12
  const out = Buffer.alloc(16 + addrLength)
  V2_SIGNATURE.copy(out, 0)
  out[12] = 0x21 // version 2, PROXY
  out[13] = v6 ? 0x21 : 0x11 // TCP over IPv6 / IPv4
  out.writeUInt16BE(addrLength, 14)
  let at = 16
  for (const a of [source.address, destination.address]) {
    const bytes = v6 ? ipv6Bytes(a) : ipv4Bytes(a)
    bytes.copy(out, at)
    at += bytes.length
  }
  out.writeUInt16BE(source.port, at)
  out.writeUInt16BE(destination.port, at + 2)
  return out
}

/** Parses a PROXY header at the start of `buf`; `length` is how many bytes it took. */
export function parseProxyHeader(buf: Buffer): ProxyParseResult {
  if (buf.length === 0) return { kind: 'incomplete' }
  if (buf[0] === 0x0d) return parseV2(buf)
  if (buf[0] === 0x50) return parseV1(buf)
  return { kind: 'invalid', reason: 'no PROXY protocol signature' }
}

function parseV1(buf: Buffer): ProxyParseResult {
  const prefixLength = Math.min(buf.length, V1_PREFIX.length)
  if (!buf.subarray(0, prefixLength).equals(V1_PREFIX.subarray(0, prefixLength))) {
    return { kind: 'invalid', reason: 'no PROXY protocol signature' }
  }
  const end = buf.indexOf('\r\n')
  if (end === -1) {
    return buf.length >= V1_MAX_LENGTH ? { kind: 'invalid', reason: 'v1 header longer than 107 bytes' } : { kind: 'incomplete' }
  }
  if (end + 2 > V1_MAX_LENGTH) return { kind: 'invalid', reason: 'v1 header longer than 107 bytes' }
  const parts = buf.toString('latin1', 0, end).split(' ')
  const family = parts[1]
  if (family === 'UNKNOWN') return { kind: 'ok', length: end + 2, header: { version: 1, command: 'PROXY', family } }
  if ((family !== 'TCP4' && family !== 'TCP6') || parts.length !== 6) {
    return { kind: 'invalid', reason: 'malformed v1 header' }
  }
  const want = family === 'TCP4' ? 4 : 6
  const [, , src, dst, sport, dport] = parts as [string, string, string, string, string, string]
  if (isIP(src) !== want || isIP(dst) !== want) return { kind: 'invalid', reason: `v1 addresses are not ${family}` }
  const sp = parseV1Port(sport)
  const dp = parseV1Port(dport)
  if (sp === undefined || dp === undefined) return { kind: 'invalid', reason: 'malformed v1 port' }
  return {
    kind: 'ok',
    length: end + 2,
    header: { version: 1, command: 'PROXY', family, source: { address: src, port: sp }, destination: { address: dst, port: dp } },
  }
}

function parseV1Port(text: string): number | undefined {
  // The spec forbids leading zeros; a strict reader refuses them.
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return undefined
  const n = Number(text)
  return n <= 65535 ? n : undefined
}

function parseV2(buf: Buffer): ProxyParseResult {
  const have = Math.min(buf.length, V2_SIGNATURE.length)
  if (!buf.subarray(0, have).equals(V2_SIGNATURE.subarray(0, have))) {
    return { kind: 'invalid', reason: 'no PROXY protocol signature' }
  }
  if (buf.length < 16) return { kind: 'incomplete' }
  const verCmd = buf[12] as number
  const fam = buf[13] as number
  const length = buf.readUInt16BE(14)
  if (verCmd >> 4 !== 2) return { kind: 'invalid', reason: 'unsupported v2 version' }
  const cmd = verCmd & 0x0f
  if (cmd > 1) return { kind: 'invalid', reason: 'unsupported v2 command' }
  if (buf.length < 16 + length) return { kind: 'incomplete' }
  const total = 16 + length
  const command = cmd === 0 ? 'LOCAL' : 'PROXY'
  if (command === 'LOCAL' || fam === 0x00) {
    return { kind: 'ok', length: total, header: { version: 2, command, family: 'UNKNOWN' } }
  }
  if (fam === 0x11 && length >= 12) {
    return {
      kind: 'ok',
      length: total,
      header: {
        version: 2,
        command,
        family: 'TCP4',
        source: { address: buf.subarray(16, 20).join('.'), port: buf.readUInt16BE(24) },
        destination: { address: buf.subarray(20, 24).join('.'), port: buf.readUInt16BE(26) },
      },
    }
  }
  if (fam === 0x21 && length >= 36) {
    return {
      kind: 'ok',
      length: total,
      header: {
        version: 2,
        command,
        family: 'TCP6',
        source: { address: formatIpv6(buf.subarray(16, 32)), port: buf.readUInt16BE(48) },
        destination: { address: formatIpv6(buf.subarray(32, 48)), port: buf.readUInt16BE(50) },
      },
    }
  }
  // UDP and unix sockets carry no TCP client address; treat like UNKNOWN as the spec allows.
  if (fam === 0x12 || fam === 0x22 || fam === 0x31 || fam === 0x32) {
    return { kind: 'ok', length: total, header: { version: 2, command, family: 'UNKNOWN' } }
  }
  return { kind: 'invalid', reason: 'malformed v2 address block' }
}

export class ProxyProtocolError extends EdgeError {
  constructor(reason: string) {
    super('EDGE_ERR_PROXY_PROTOCOL', `PROXY protocol: ${reason}`)
  }
}

/**
 * Reads the PROXY header off a fresh socket, then puts any bytes after it back with
 * `unshift` so the next reader sees the stream as if the header had never been there.
 */
export function readProxyHeader(socket: Socket, timeoutMs = 10_000): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0)
    const timer = setTimeout(() => finish(new ProxyProtocolError('timed out waiting for the header')), timeoutMs)
    const finish = (err: Error | null, header?: ProxyHeader, rest?: Buffer) => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('error', onError)
      if (err) return reject(err)
      socket.pause()
      if (rest && rest.length > 0) socket.unshift(rest)
      resolve(header as ProxyHeader)
    }
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
      const r = parseProxyHeader(buffered)
      if (r.kind === 'ok') finish(null, r.header, buffered.subarray(r.length))
      else if (r.kind === 'invalid') finish(new ProxyProtocolError(r.reason))
      else if (buffered.length > 16 + 65535) finish(new ProxyProtocolError('header too long'))
    }
    const onEnd = () => finish(new ProxyProtocolError('connection closed before the header'))
    const onError = (err: Error) => finish(err)
    socket.on('data', onData)
    socket.on('end', onEnd)
    socket.on('error', onError)
  })
}

function ipv4Bytes(a: string): Buffer {
  return Buffer.from(a.split('.').map(Number))
}

function ipv6Bytes(a: string): Buffer {
  const out = Buffer.alloc(16)
  const text = a.includes('.') ? embedV4(a) : a
  const [head, tail] = text.split('::') as [string, string | undefined]
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2)
  return out
}

function embedV4(a: string): string {
  const i = a.lastIndexOf(':')
  const v4 = ipv4Bytes(a.slice(i + 1))
  return `${a.slice(0, i)}:${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`
}

function formatIpv6(b: Buffer): string {
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16))
  // RFC 5952: compress the longest run of zero groups.
  let best = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLen && j - i > 1) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  if (best === -1) return groups.join(':')
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`
}
