import type { HostPort, SourcePosition } from '@edgestack/common'

/**
 * The one configuration model of tls-terminator. stunnel.conf and the command-line flags both
 * produce it; everything else reads it. Durations are in milliseconds, whatever the source said.
 */

/** syslog levels, as stunnel's `debug`: 0 emerg ... 5 notice ... 7 debug. */
export type SyslogLevel = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3'

export interface GlobalModel {
  /** Where the model came from: the config file, or `(command line)`. */
  readonly source: string
  /** stunnel forks into the background unless `foreground = yes|quiet`; we never fork (see cli.ts). */
  readonly foreground: 'yes' | 'quiet' | 'no'
  readonly pid: string | undefined
  readonly output: string | undefined
  readonly debug: SyslogLevel
  readonly setuid: string | undefined
  readonly setgid: string | undefined
}

export interface Timeouts {
  /** TIMEOUTbusy: a client that does not finish its handshake in this time is dropped. */
  readonly busyMs: number
  /** TIMEOUTclose: after the backend closed, how long we wait for the client's own close. */
  readonly closeMs: number
  /** TIMEOUTconnect: per backend address tried. */
  readonly connectMs: number
  /** TIMEOUTidle: no bytes either way for this long closes the connection. */
  readonly idleMs: number
}

export interface ClientCertPolicy {
  readonly caFile: string | undefined
  readonly caPath: string | undefined
  readonly crlFile: string | undefined
  /** The chain must verify up to a CA from CAfile/CApath. */
  readonly verifyChain: boolean
  /** The client's certificate itself must be one of those in CAfile/CApath (pinning). */
  readonly verifyPeer: boolean
  /** A client that sends no certificate is refused. */
  readonly requireCert: boolean
  /** A certificate is asked for (`verify = 0` asks without checking it). */
  readonly requestCert: boolean
}

export interface ServiceModel {
  readonly name: string
  /** Where `[name]` (or the flags) defined it; option positions are in `positions`. */
  readonly position: SourcePosition | undefined
  readonly positions: Readonly<Record<string, SourcePosition>>
  /** Absent on a secondary (SNI) service: its primary accepts for it. */
  readonly accept: HostPort | undefined
  readonly connect: readonly HostPort[]
  readonly failover: 'rr' | 'prio'
  /** Outgoing source address for backend connections (`local`). */
  readonly local: string | undefined
  readonly cert: string
  readonly key: string
  readonly clientCerts: ClientCertPolicy
  readonly sslVersionMin: TlsVersion
  readonly sslVersionMax: TlsVersion
  readonly ciphers: string | undefined
  readonly ciphersuites: string | undefined
  readonly curves: string | undefined
  readonly securityLevel: number | undefined
  /** OpenSSL SSL_OP_* bits to set and to clear (`options = NAME`, `options = -NAME`). */
  readonly optionsSet: number
  readonly optionsClear: number
  /** `sni = primary:pattern` lines of a secondary service. */
  readonly sni: readonly { readonly primary: string; readonly pattern: string }[]
  readonly timeouts: Timeouts
  /**
   * The header written to the backend first: stunnel's `protocol = proxy` and hitch's
   * write-proxy-v1 (`proxy`, PROXY v1), or hitch's write-proxy-v2 (`proxy-v2`).
   */
  readonly protocol: 'proxy' | 'proxy-v2' | undefined
  /** hitch's proxy-tlv: the PROXY v2 header also carries the SSL TLV (version, cipher). */
  readonly proxyTlv: boolean
  /**
   * ALPN protocols offered, in the server's order of preference (hitch's alpn-protos; with
   * stunnel.conf, edgestack's `--alpn-protos`). Undefined: no ALPN, as stunnel.
   */
  readonly alpnProtocols: readonly string[] | undefined
  /** hitch's keepalive: TCP keepalive on client sockets after this idle time; undefined: off. */
  readonly keepaliveMs: number | undefined
  readonly sessionResume: boolean
  readonly sessionCacheTimeoutS: number
  /** Sessions the listener remembers for TLS 1.2 session-ID (and TLS 1.3 stateful) resumption. */
  readonly sessionCacheSize: number
  readonly ticketKeySecret: Buffer | undefined
  readonly ticketMacSecret: Buffer | undefined
  readonly debug: SyslogLevel
}

/** A primary service with the secondaries its SNI patterns route to, in config order. */
export interface ListenerModel {
  readonly service: ServiceModel
  readonly virtualHosts: readonly { readonly pattern: string; readonly service: ServiceModel }[]
}

export interface TerminatorModel {
  readonly global: GlobalModel
  readonly listeners: readonly ListenerModel[]
  /** Open client connections per listener before new ones are dropped (with a log line). */
  readonly maxConnections: number
  /** SIGTERM: how long open connections may take to finish before they are cut. */
  readonly drainTimeoutMs: number
  /** `--metrics ADDR` (edgestack, no stunnel option): /metrics, /healthz, /readyz; in the primary with --workers. */
  readonly metrics: HostPort | undefined
  /** `--drain-delay SEC` (edgestack): /readyz 503 while still accepting, before a stop's drain. */
  readonly drainDelayMs: number
}

export const DEFAULT_TIMEOUTS: Timeouts = Object.freeze({
  // stunnel waits 300 s for a busy peer; a client that sends nothing during the handshake is
  // an attack or a bug, so our default is 10 s (TIMEOUTbusy still overrides it).
  busyMs: 10_000,
  closeMs: 60_000,
  connectMs: 10_000,
  idleMs: 43_200_000,
})

export const DEFAULT_MAX_CONNECTIONS = 10_000
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000
/** stunnel's sessionCacheTimeout default. */
export const DEFAULT_SESSION_TIMEOUT_S = 300
/** stunnel's sessionCacheSize default (`stunnel -version`). */
export const DEFAULT_SESSION_CACHE_SIZE = 1000
/**
 * stunnel's `sessionCacheSize = 0` means no limit (OpenSSL's SSL_CTX_sess_set_cache_size); an
 * unbounded cache lets clients grow the process without end, so 0 is this many instead.
 */
export const MAX_SESSION_CACHE_SIZE = 100_000

export { deepFreeze } from '@edgestack/common'
