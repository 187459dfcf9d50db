import { constants } from 'node:crypto'
import { isIP } from 'node:net'
import { type HostPort, parseAddress } from '@edgestack/common'
import type { SyslogLevel, TlsVersion } from './model.js'

/**
 * Parsers for stunnel.conf option values. Each throws a plain Error whose message is the
 * problem only; the caller adds `file:line: option:`.
 */

export function yesNo(value: string): boolean {
  const v = value.toLowerCase()
  if (v === 'yes') return true
  if (v === 'no') return false
  throw new Error(`expected yes or no, got "${value}"`)
}

export function seconds(value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new Error(`"${value}" is not a whole number of seconds`)
  return Number(value) * 1000
}

export function integer(value: string, min: number, max: number): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new Error(`"${value}" is not a number from ${min} to ${max}`)
  }
  return Number(value)
}

const LEVEL_NAMES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug']
const FACILITIES = new Set([
  'auth',
  'authpriv',
  'cron',
  'daemon',
  'ftp',
  'kern',
  'lpr',
  'mail',
  'news',
  'syslog',
  'user',
  'uucp',
  'local0',
  'local1',
  'local2',
  'local3',
  'local4',
  'local5',
  'local6',
  'local7',
])

/** `debug = [facility.]level`; the facility only matters for syslog, which we do not write to. */
export function syslogLevel(value: string, allowFacility: boolean): SyslogLevel {
  let level = value.toLowerCase()
  const dot = level.indexOf('.')
  if (dot !== -1) {
    if (!allowFacility) throw new Error(`a facility ("${value.slice(0, dot)}") is only allowed in the global section`)
    const facility = level.slice(0, dot)
    if (!FACILITIES.has(facility)) throw new Error(`"${facility}" is not a syslog facility`)
    level = level.slice(dot + 1)
  }
  if (/^[0-7]$/.test(level)) return Number(level) as SyslogLevel
  const i = LEVEL_NAMES.indexOf(level)
  if (i === -1) throw new Error(`"${value}" is not a level: use 0-7 or ${LEVEL_NAMES.join(', ')}`)
  return i as SyslogLevel
}

/** stunnel's `accept = 443` listens on every interface; `connect = 80` goes to localhost. */
export function address(value: string, defaultHost: string): HostPort {
  if (value.startsWith('/')) throw new Error('Unix socket paths are not supported')
  try {
    return parseAddress(value, defaultHost)
  } catch (err) {
    throw new Error((err as Error).message)
  }
}

/**
 * `local`: the source address of backend connections. stunnel resolves it when it reads the
 * file and refuses one it cannot resolve; we take an IP address only (no lookup at start-up),
 * so a typo stops start-up at its line instead of failing every connection.
 */
export function localAddress(value: string): string {
  if (isIP(value) === 0) throw new Error(`"${value}" is not an IP address`)
  return value
}

const VERSIONS = ['all', 'SSLv3', 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']

/**
 * Returns the version, `legacy` for one below TLS 1.2, which we never negotiate, or `all`,
 * stunnel's "no bound" (its str_to_proto_version gives 0): the lowest version as a minimum,
 * the highest as a maximum.
 */
export function tlsVersion(value: string): TlsVersion | 'legacy' | 'all' {
  const v = VERSIONS.find((x) => x.toLowerCase() === value.toLowerCase())
  if (!v) throw new Error(`"${value}" is not one of ${VERSIONS.join(', ')}`)
  if (v === 'all') return 'all'
  return v === 'TLSv1.2' || v === 'TLSv1.3' ? v : 'legacy'
}

/** `options = NAME` sets SSL_OP_NAME; `options = -NAME` clears it (stunnel(8), "options"). */
export function sslOption(value: string): { bit: number; clear: boolean } {
  const clear = value.startsWith('-')
  const name = (clear ? value.slice(1) : value).toUpperCase()
  if (name === 'ALLOW_UNSAFE_LEGACY_RENEGOTIATION' && !clear) {
    throw new Error('ALLOW_UNSAFE_LEGACY_RENEGOTIATION is refused (CVE-2009-3555)')
  }
  const bit = (constants as unknown as Record<string, number | undefined>)[`SSL_OP_${name}`]
  if (typeof bit !== 'number') throw new Error(`"${value}" is not an OpenSSL option this Node knows`)
  return { bit, clear }
}

/** ticketKeySecret / ticketMacSecret: 16 or 32 bytes in hex, colons allowed between bytes. */
export function hexSecret(value: string): Buffer {
  const hex = value.replaceAll(':', '')
  if (!/^[0-9a-fA-F]+$/.test(hex) || (hex.length !== 32 && hex.length !== 64)) {
    throw new Error('expected 16 or 32 bytes in hexadecimal (32 or 64 digits, colons allowed)')
  }
  return Buffer.from(hex, 'hex')
}

/**
 * `sni = primary:pattern`. stunnel lets a pattern start with `*` (a suffix match); any other
 * `*` would be matched literally by stunnel and is surely a mistake, so we refuse it.
 */
export function sniValue(value: string): { primary: string; pattern: string } {
  const colon = value.indexOf(':')
  if (colon <= 0 || colon === value.length - 1) throw new Error(`expected SERVICE:PATTERN, got "${value}"`)
  const primary = value.slice(0, colon).trim()
  const pattern = value
    .slice(colon + 1)
    .trim()
    .toLowerCase()
  if (pattern.indexOf('*', 1) !== -1) throw new Error(`"${pattern}": "*" may only start the pattern, as in *.example.com`)
  return { primary, pattern }
}
