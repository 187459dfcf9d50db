import { isIP } from 'node:net'
import { UsageError } from './errors.js'

export interface HostPort {
  host: string
  port: number
}

/**
 * Parses the address forms that stunnel, varnishd and nginx all accept:
 * `80`, `:80`, `127.0.0.1:80`, `localhost:80`, `[::1]:80`, `*:80`.
 * A missing or `*` host becomes `defaultHost`.
 */
export function parseAddress(spec: string, defaultHost = '0.0.0.0'): HostPort {
  const s = spec.trim()
  let host: string
  let portText: string
  if (s.startsWith('[')) {
    const end = s.indexOf(']')
    if (end === -1 || s[end + 1] !== ':') throw new UsageError(`invalid address "${spec}": expected [ipv6]:port`)
    host = s.slice(1, end)
    portText = s.slice(end + 2)
    if (isIP(host) !== 6) throw new UsageError(`invalid address "${spec}": "${host}" is not an IPv6 address`)
  } else {
    const colon = s.lastIndexOf(':')
    if (colon === -1) {
      host = defaultHost
      portText = s
    } else {
      host = s.slice(0, colon)
      portText = s.slice(colon + 1)
      if (host.includes(':')) throw new UsageError(`invalid address "${spec}": put IPv6 addresses in brackets, as [::1]:80`)
      if (host === '' || host === '*') host = defaultHost
    }
  }
  return { host, port: parsePort(portText, spec) }
}

function parsePort(text: string, spec: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new UsageError(`invalid address "${spec}": port "${text}" is not a number`)
  const port = Number(text)
  if (port > 65535) throw new UsageError(`invalid address "${spec}": port ${port} is out of range 0-65535`)
  return port
}

/** `127.0.0.1:80` or `[::1]:80`, for logs and URLs. */
export function formatAddress(a: HostPort): string {
  return isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}
