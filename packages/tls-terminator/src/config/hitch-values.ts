import { ConfigError, type HostPort, type SourcePosition, UsageError, formatPosition } from '@edgestack/common'
import { isIP } from 'node:net'
import type { HitchSetting, HitchValue } from './hitch-conf.js'
import { type HitchOption, hitchOption } from './hitch-options.js'
import type { TlsVersion } from './model.js'

/**
 * hitch.conf values: each setting checked against hitch-options.ts's table and read as the
 * kind hitch's grammar gives it, with hitch's own messages where it has them.
 */

const TLS_PROTOS = new Map<string, TlsVersion | 'legacy'>([
  ['SSLv3', 'legacy'],
  ['TLSv1.0', 'legacy'],
  ['TLSv1.1', 'legacy'],
  ['TLSv1.2', 'TLSv1.2'],
  ['TLSv1.3', 'TLSv1.3'],
])
/** `file:line: key: problem`, or `--key: problem` for a flag (a usage error, as for the stunnel flags). */
export function fail(s: { key: string; position: SourcePosition | undefined }, problem: string): never {
  if (!s.position) throw new UsageError(`--${s.key}: ${problem}`)
  throw new ConfigError(problem, { position: s.position, directive: s.key })
}

/** hitch's grammar refuses a key it does not know, or one in the wrong place, as a syntax error. */
export function syntaxError(s: HitchSetting): never {
  if (!s.position) throw new UsageError(`unknown option --${s.key}`)
  throw new ConfigError(`syntax error: '${s.text}'`, { position: s.position })
}

export type Scope = 'global' | 'frontend' | 'pem'

/** Checks one setting against the table; undefined when it is accepted and means nothing to us. */
export function check(s: HitchSetting, scope: Scope, warnings: string[]): HitchOption | undefined {
  const o = hitchOption(s.key)
  if (!o || !o.scopes.includes(scope) || (o.commandLineOnly && s.position)) return syntaxError(s)
  checkType(o, s)
  if (o.support === 'no') {
    if (o.unless !== undefined && bool(s) === (o.unless === 'on')) return undefined
    fail(s, `not supported by tls-terminator${o.note ? ` (${o.note})` : ''}`)
  }
  if (o.support === 'warn') {
    warnings.push(`${s.position ? `${formatPosition(s.position)}: ` : `--${s.key}: `}${s.key}: ignored: ${o.note}`)
    return undefined
  }
  return o
}

function checkType(o: HitchOption, s: HitchSetting): void {
  const v = s.value
  const one = v.kind === 'string' ? v.text : v.kind === 'words' && v.words.length === 1 ? v.words[0] : undefined
  const ok =
    o.type === 'block'
      ? v.kind === 'block' || v.kind === 'string'
      : o.type === 'words'
        ? v.kind === 'words'
        : o.type === 'number'
          ? one !== undefined && /^\d{1,9}$/.test(one)
          : o.type === 'bool'
            ? one !== undefined && BOOLS.has(one.toLowerCase())
            : one !== undefined
  if (ok) return
  if (!s.position) throw new UsageError(`Invalid argument '${s.text.slice(s.key.length + 3)}' for option '${s.key}'`)
  syntaxError(s)
}

const BOOLS = new Map([
  ['on', true],
  ['yes', true],
  ['true', true],
  ['off', false],
  ['no', false],
  ['false', false],
])

export function text(s: HitchSetting): string {
  const v = s.value
  if (v.kind === 'string') return v.text
  if (v.kind === 'words') return v.words.join(' ')
  return syntaxError(s)
}

export function bool(s: HitchSetting): boolean {
  return BOOLS.get(text(s).toLowerCase()) ?? false
}

export function num(s: HitchSetting): number {
  return Number(text(s))
}

/**
 * hitch's `[HOST]:PORT` (brackets required, `*` for every interface), with `+CERT` after a
 * frontend's; its messages are hitch's own ("Invalid address string", "Invalid port number").
 */
export function endpoint(s: HitchSetting, spec: string, withCert: boolean): { address: HostPort; cert: string | undefined } {
  const m = /^\[([^\]]*)\]:([^+]*)(?:\+(.+))?$/.exec(spec)
  if (!m || (m[3] !== undefined && !withCert)) fail(s, `Invalid address string '${spec}'`)
  const [, host, port, cert] = m
  return { address: { host: hostOf(s, host as string), port: portOf(s, port as string) }, cert }
}

export function hostOf(s: HitchSetting, host: string): string {
  if (host === '*' || host === '') return '0.0.0.0'
  if (host === 'localhost') return '127.0.0.1'
  if (isIP(host) === 0 && !/^[a-zA-Z0-9.-]{1,253}$/.test(host)) fail(s, `Invalid address string '${host}'`)
  return host
}

export function portOf(s: HitchSetting, port: string): number {
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) fail(s, `Invalid port number '${port}'`)
  return Number(port)
}

export function alpnList(s: HitchSetting): string[] {
  const spec = text(s)
  const list = spec.split(',').map((p) => p.trim())
  // hitch's words (configuration.c, config_set_alpn_protos).
  if (list.some((p) => p === '')) fail(s, `alpn-protos configuration "${spec}" is bad. alpn-protos has empty proto in list`)
  if (list.some((p) => Buffer.byteLength(p) > 255)) fail(s, `alpn-protos configuration "${spec}" is bad. a protocol is longer than 255 bytes`)
  return list
}

export function tlsProtos(s: HitchSetting): { min: TlsVersion; max: TlsVersion } {
  const found: TlsVersion[] = []
  for (const word of (s.value as Extract<HitchValue, { kind: 'words' }>).words) {
    const v = TLS_PROTOS.get(word)
    if (v === undefined) fail(s, `Invalid 'tls-protos' option '${word}'`)
    if (v === 'legacy') fail(s, `${word} is never negotiated by tls-terminator: TLSv1.2 is the floor`)
    found.push(v)
  }
  const min = found.includes('TLSv1.2') ? 'TLSv1.2' : 'TLSv1.3'
  const max = found.includes('TLSv1.3') ? 'TLSv1.3' : 'TLSv1.2'
  return { min, max }
}
