import { ConfigError, formatPosition, type HostPort, type SourcePosition } from '@edgestack/common'
import {
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_SESSION_CACHE_SIZE,
  DEFAULT_SESSION_TIMEOUT_S,
  DEFAULT_TIMEOUTS,
  deepFreeze,
  type GlobalModel,
  type ListenerModel,
  type ServiceModel,
  type SyslogLevel,
  type TerminatorModel,
  type TlsVersion,
  MAX_SESSION_CACHE_SIZE,
} from './model.js'
import { CLIENT_CERT_OPTIONS, foldClientCertOptions } from './client-cert-options.js'
import { optionSpec } from './option-table.js'
import * as parse from './values.js'

/** One `name = value` line, already split; `position` is absent when it came from a flag. */
export interface RawOption {
  readonly name: string
  readonly value: string
  readonly position: SourcePosition | undefined
}

/** The global section (name undefined) or a `[service]`, with its options in file order. */
export interface RawSection {
  readonly name: string | undefined
  readonly position: SourcePosition | undefined
  readonly options: readonly RawOption[]
}

export interface BuildOptions {
  source: string
  maxConnections?: number
  drainTimeoutMs?: number
  /** `--metrics ADDR` (edgestack). */
  metrics?: HostPort
  /** `--drain-delay SEC` (edgestack), in ms. */
  drainDelayMs?: number
  /** `--alpn-protos LIST` (edgestack, for stunnel.conf, which has no ALPN option): every service offers it. */
  alpnProtocols?: readonly string[]
}

export interface BuiltModel {
  model: TerminatorModel
  /** `file:line: option: ...` lines for options accepted but ignored. */
  warnings: string[]
}

/**
 * Turns parsed sections into the frozen model. Both stunnel.conf and the flags come through
 * here, so they cannot drift apart. The first section must be the global one.
 */
export function buildModel(sections: readonly RawSection[], opts: BuildOptions): BuiltModel {
  const warnings: string[] = []
  const [globalSection, ...serviceSections] = sections
  if (!globalSection || globalSection.name !== undefined) throw new Error('buildModel: the global section comes first')

  const defaults = new Map<string, RawOption[]>()
  // Options whose lines set overlapping flags, so that their order matters (see IN_FILE_ORDER).
  const defaultOrderedLines: RawOption[] = []
  const globalValues = new Map<string, RawOption>()
  for (const option of globalSection.options) {
    const spec = check(option, 'global', warnings)
    if (!spec) continue
    // Global `debug` (with its facility) sets the log level, which every service inherits.
    if (spec.scope === 'global' || spec.name === 'debug') globalValues.set(spec.name, option)
    else if (IN_FILE_ORDER.has(spec.name)) defaultOrderedLines.push(option)
    else collect(defaults, spec.name, option, spec.repeat === true)
  }
  const global = buildGlobal(globalValues, opts.source)

  const services: ServiceModel[] = []
  const names = new Map<string, SourcePosition | undefined>()
  for (const section of serviceSections) {
    const name = section.name as string
    if (names.has(name)) {
      throw new ConfigError(`service defined twice (first at ${where(names.get(name))})`, {
        position: section.position,
        directive: `[${name}]`,
      })
    }
    names.set(name, section.position)
    const own = new Map<string, RawOption[]>()
    const orderedLines = [...defaultOrderedLines]
    for (const option of section.options) {
      const spec = check(option, 'service', warnings)
      if (!spec) continue
      if (IN_FILE_ORDER.has(spec.name)) orderedLines.push(option)
      else collect(own, spec.name, option, spec.repeat === true)
    }
    // Service options override the global defaults, option by option, as in stunnel.
    const merged = new Map(defaults)
    for (const [k, v] of own) merged.set(k, v)
    services.push(buildService(name, section.position, merged, orderedLines, global, warnings, opts.alpnProtocols))
  }
  if (services.length === 0) {
    throw new ConfigError('no [service] section: nothing to accept', { position: { file: opts.source, line: 1 } })
  }
  const model: TerminatorModel = {
    global,
    listeners: groupListeners(services),
    maxConnections: opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    drainTimeoutMs: opts.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
    metrics: opts.metrics,
    drainDelayMs: opts.drainDelayMs ?? 0,
  }
  return { model: deepFreeze(model), warnings }
}

/**
 * Options that stunnel's parser applies line by line to flags they share, so a later line
 * undoes part of an earlier one: these are kept in file order (the global section's first)
 * instead of "the last line of each name wins".
 */
const IN_FILE_ORDER = new Set([...CLIENT_CERT_OPTIONS, 'sslVersion', 'sslVersionMin', 'sslVersionMax'])

/** The option table's spelling of a name written in any case. */
function canonical(name: string): string {
  return optionSpec(name)?.name ?? name
}

function check(option: RawOption, section: 'global' | 'service', warnings: string[]) {
  const spec = optionSpec(option.name)
  const at = { position: option.position }
  if (!spec) throw new ConfigError(`option "${option.name}" is not supported`, at)
  if (section === 'service' && spec.scope === 'global') {
    throw new ConfigError(`option "${spec.name}" belongs in the global section, before any [service]`, at)
  }
  if (section === 'global' && spec.name !== 'include' && spec.scope === 'service') {
    throw new ConfigError(`option "${spec.name}" belongs in a [service] section`, at)
  }
  if (spec.support === 'no') {
    const v = option.value.toLowerCase()
    if (typeof spec.unless === 'string' ? v === spec.unless : spec.unless?.includes(v)) return undefined
    throw new ConfigError(`option "${spec.name}" is not supported${spec.note ? ` (${spec.note})` : ''}`, at)
  }
  if (spec.support === 'warn') {
    warnings.push(`${option.position ? `${formatPosition(option.position)}: ` : ''}${spec.name}: ignored: ${spec.note}`)
    return undefined
  }
  return spec
}

function collect(into: Map<string, RawOption[]>, name: string, option: RawOption, repeat: boolean): void {
  const list = into.get(name)
  // A repeated single-valued option: the last one wins, as in stunnel.
  if (list && repeat) list.push(option)
  else into.set(name, [option])
}

function where(p: SourcePosition | undefined): string {
  return p ? formatPosition(p) : 'the command line'
}

/** Runs a value parser and positions its complaint: `file:line: option: problem`. */
function value<T>(option: RawOption, fn: (v: string) => T): T {
  try {
    return fn(option.value)
  } catch (err) {
    throw new ConfigError((err as Error).message, { position: option.position, directive: option.name })
  }
}

function buildGlobal(values: Map<string, RawOption>, source: string): GlobalModel {
  const get = (n: string) => values.get(n)
  const foreground = get('foreground')
  const debug = get('debug')
  return {
    source,
    foreground: foreground
      ? value(foreground, (v) => {
          const f = v.toLowerCase()
          if (f === 'yes' || f === 'no' || f === 'quiet') return f
          throw new Error(`expected yes, quiet or no, got "${v}"`)
        })
      : 'no',
    pid: get('pid')?.value || undefined,
    output: get('output')?.value || undefined,
    debug: debug ? value(debug, (v) => parse.syslogLevel(v, true)) : 5,
    setuid: get('setuid')?.value,
    setgid: get('setgid')?.value,
  }
}

function buildService(
  name: string,
  position: SourcePosition | undefined,
  o: Map<string, RawOption[]>,
  orderedLines: readonly RawOption[],
  global: GlobalModel,
  warnings: string[],
  alpn: readonly string[] | undefined,
): ServiceModel {
  const one = (n: string) => o.get(n)?.at(-1)
  const at = { position, directive: `[${name}]` }
  const flag = (n: string, dflt: boolean) => {
    const opt = one(n)
    return opt ? value(opt, parse.yesNo) : dflt
  }
  const secs = (n: string, dflt: number) => {
    const opt = one(n)
    return opt ? value(opt, parse.seconds) : dflt
  }
  const positions: Record<string, SourcePosition> = {}
  for (const [n, list] of o) {
    const p = list.at(-1)?.position
    if (p) positions[n] = p
  }

  const sni = (o.get('sni') ?? []).map((opt) => value(opt, parse.sniValue))
  const acceptOpt = one('accept')
  const accept: HostPort | undefined = acceptOpt ? value(acceptOpt, (v) => parse.address(v, '0.0.0.0')) : undefined
  if (accept && sni.length > 0) {
    throw new ConfigError('a service with sni is reached through its primary service and cannot also accept', {
      position: one('sni')?.position,
      directive: 'sni',
    })
  }
  if (!accept && sni.length === 0) throw new ConfigError('accept is required (or sni = SERVICE:PATTERN)', at)
  const connect = (o.get('connect') ?? []).map((opt) => value(opt, (v) => parse.address(v, '127.0.0.1')))
  if (connect.length === 0) throw new ConfigError('connect is required', at)
  const cert = one('cert')?.value
  if (!cert) throw new ConfigError('cert is required (in the service or the global section)', at)

  const { requestCert, requireCert, verifyChain, verifyPeer } = foldClientCertOptions(
    orderedLines.filter((l) => CLIENT_CERT_OPTIONS.has(canonical(l.name))),
    value,
  )
  const caFile = one('CAfile')?.value || undefined
  const caPath = one('CApath')?.value || undefined
  if ((verifyChain || verifyPeer) && !caFile && !caPath) {
    throw new ConfigError('verifyChain and verifyPeer need CAfile or CApath', at)
  }

  const versions = { min: 'TLSv1.2' as TlsVersion, max: 'TLSv1.3' as TlsVersion }
  // stunnel sets min and max line by line: `sslVersion` both, the others one end each.
  for (const opt of orderedLines) {
    const n = canonical(opt.name)
    if (n !== 'sslVersion' && n !== 'sslVersionMin' && n !== 'sslVersionMax') continue
    const v = value(opt, parse.tlsVersion)
    const ends = n === 'sslVersion' ? (['min', 'max'] as const) : n === 'sslVersionMin' ? (['min'] as const) : (['max'] as const)
    for (const end of ends) {
      if (v === 'all' && end === 'max') versions.max = 'TLSv1.3'
      else if (v !== 'legacy' && v !== 'all') versions[end] = v
      else if (end === 'max') throw new ConfigError(`"${opt.value}" would leave no version: TLSv1.2 is the minimum`, { position: opt.position, directive: n })
      else warnings.push(`${opt.position ? `${formatPosition(opt.position)}: ` : ''}${n}: raised to TLSv1.2; older versions are never negotiated`)
    }
  }
  if (versions.min === 'TLSv1.3' && versions.max === 'TLSv1.2') {
    throw new ConfigError('sslVersionMin is above sslVersionMax', at)
  }

  let optionsSet = 0
  let optionsClear = 0
  for (const opt of o.get('options') ?? []) {
    const { bit, clear } = value(opt, parse.sslOption)
    if (clear) optionsClear |= bit
    else optionsSet |= bit
  }

  const protocolOpt = one('protocol')
  const protocol = protocolOpt
    ? value(protocolOpt, (v) => {
        if (v.toLowerCase() === 'proxy') return 'proxy' as const
        throw new Error(`"${v}" is not supported (only proxy)`)
      })
    : undefined
  const failoverOpt = one('failover')
  const failover = failoverOpt
    ? value(failoverOpt, (v) => {
        const f = v.toLowerCase()
        if (f === 'rr' || f === 'prio') return f
        throw new Error(`expected rr or prio, got "${v}"`)
      })
    : 'prio'

  const ticketKey = one('ticketKeySecret')
  const ticketMac = one('ticketMacSecret')
  if (Boolean(ticketKey) !== Boolean(ticketMac)) {
    throw new ConfigError('ticketKeySecret and ticketMacSecret go together', at)
  }
  const renegotiation = one('renegotiation')
  if (renegotiation && value(renegotiation, parse.yesNo)) {
    warnings.push(
      `${renegotiation.position ? `${formatPosition(renegotiation.position)}: ` : ''}renegotiation: stays disabled (client-initiated renegotiation is a DoS vector)`,
    )
  }
  const debugOpt = one('debug')
  const securityLevelOpt = one('securityLevel')
  const sessionCacheSizeOpt = one('sessionCacheSize')
  const localOpt = one('local')
  return {
    name,
    position,
    positions,
    accept,
    connect,
    failover,
    local: localOpt ? value(localOpt, parse.localAddress) : undefined,
    cert,
    key: one('key')?.value || cert,
    clientCerts: {
      caFile,
      caPath,
      crlFile: one('CRLfile')?.value || undefined,
      verifyChain,
      verifyPeer,
      requireCert,
      requestCert,
    },
    sslVersionMin: versions.min,
    sslVersionMax: versions.max,
    ciphers: one('ciphers')?.value || undefined,
    ciphersuites: one('ciphersuites')?.value || undefined,
    curves: one('curves')?.value || undefined,
    securityLevel: securityLevelOpt ? value(securityLevelOpt, (v) => parse.integer(v, 0, 5)) : undefined,
    optionsSet,
    optionsClear,
    sni,
    timeouts: {
      busyMs: secs('TIMEOUTbusy', DEFAULT_TIMEOUTS.busyMs),
      closeMs: secs('TIMEOUTclose', DEFAULT_TIMEOUTS.closeMs),
      connectMs: secs('TIMEOUTconnect', DEFAULT_TIMEOUTS.connectMs),
      idleMs: secs('TIMEOUTidle', DEFAULT_TIMEOUTS.idleMs),
    },
    protocol,
    proxyTlv: false,
    alpnProtocols: alpn,
    keepaliveMs: undefined,
    sessionResume: flag('sessionResume', true),
    sessionCacheTimeoutS: secs('sessionCacheTimeout', DEFAULT_SESSION_TIMEOUT_S * 1000) / 1000,
    sessionCacheSize: sessionCacheSizeOpt
      ? value(sessionCacheSizeOpt, (v) => parse.integer(v, 0, 999_999_999) || MAX_SESSION_CACHE_SIZE)
      : DEFAULT_SESSION_CACHE_SIZE,
    ticketKeySecret: ticketKey ? value(ticketKey, parse.hexSecret) : undefined,
    ticketMacSecret: ticketMac ? value(ticketMac, parse.hexSecret) : undefined,
    debug: debugOpt ? value(debugOpt, (v) => parse.syslogLevel(v, false)) : (global.debug as SyslogLevel),
  }
}

export function groupListeners(services: ServiceModel[]): ListenerModel[] {
  const listeners = new Map<string, { service: ServiceModel; virtualHosts: ListenerModel['virtualHosts'][number][] }>()
  const accepts = new Map<string, ServiceModel>()
  for (const s of services) {
    if (!s.accept) continue
    const key = `${s.accept.host}:${s.accept.port}`
    const other = accepts.get(key)
    if (other && s.accept.port !== 0) {
      throw new ConfigError(`the same address as [${other.name}]`, { position: s.positions.accept, directive: 'accept' })
    }
    accepts.set(key, s)
    listeners.set(s.name, { service: s, virtualHosts: [] })
  }
  for (const s of services) {
    for (const { primary, pattern } of s.sni) {
      const l = listeners.get(primary)
      if (!l) {
        throw new ConfigError(`"${primary}" is not a service with accept`, { position: s.positions.sni, directive: 'sni' })
      }
      l.virtualHosts.push({ pattern, service: s })
    }
  }
  return [...listeners.values()]
}
