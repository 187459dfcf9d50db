/**
 * Every key hitch 1.7 reads (hitch.conf(5), hitch(8) and its cfg_parser.y), where it may be
 * written and what we do with it; `hitch-model.ts` gives the supported ones their meaning.
 *
 * - `yes`: implemented as hitch does it.
 * - `warn`: accepted with a warning at load; what a client or backend sees is hitch's anyway.
 * - `no`: refused at load in one line; `unless` is the value that means what we always do.
 *
 * `type` is the value hitch's grammar takes: a quoted `string` (hitch also takes one bare
 * token), a `number`, a `bool` (on/off, yes/no, true/false), `words` (bare, unquoted tokens:
 * tls-protos), or a `block` (frontend, pem-file; both also take a string).
 */
export interface HitchOption {
  readonly key: string
  readonly type: 'string' | 'number' | 'bool' | 'words' | 'block'
  /** Where it may appear: the top level, a frontend block, a pem-file block. */
  readonly scopes: readonly ('global' | 'frontend' | 'pem')[]
  readonly support: 'yes' | 'warn' | 'no'
  readonly unless?: string
  readonly note?: string
  /** Repeatable (each line adds one); otherwise the last line wins, as in hitch. */
  readonly repeat?: boolean
  /** A flag only: hitch 1.7's file grammar (cfg_parser.y) has no such key, its parser says "syntax error". */
  readonly commandLineOnly?: boolean
}

const G = ['global'] as const
const GF = ['global', 'frontend'] as const
const F = ['frontend'] as const
const P = ['pem'] as const

const options: HitchOption[] = [
  { key: 'frontend', type: 'block', scopes: G, support: 'yes', repeat: true },
  { key: 'host', type: 'string', scopes: F, support: 'yes' },
  { key: 'port', type: 'string', scopes: F, support: 'yes' },
  { key: 'backend', type: 'string', scopes: G, support: 'yes' },
  { key: 'pem-file', type: 'block', scopes: GF, support: 'yes', repeat: true },
  { key: 'cert', type: 'string', scopes: P, support: 'yes' },
  { key: 'private-key', type: 'string', scopes: P, support: 'yes' },
  { key: 'ocsp-resp-file', type: 'string', scopes: P, support: 'no', note: 'OCSP stapling is not implemented' },
  { key: 'pem-dir', type: 'string', scopes: G, support: 'yes' },
  { key: 'pem-dir-glob', type: 'string', scopes: G, support: 'yes' },
  { key: 'match-global-certs', type: 'bool', scopes: F, support: 'yes' },
  { key: 'alpn-protos', type: 'string', scopes: G, support: 'yes' },
  { key: 'ciphers', type: 'string', scopes: GF, support: 'yes' },
  { key: 'ciphersuites', type: 'string', scopes: GF, support: 'yes' },
  { key: 'tls-protos', type: 'words', scopes: GF, support: 'yes' },
  { key: 'ssl', type: 'bool', scopes: GF, support: 'no', unless: 'off', note: 'SSLv3 is never negotiated: use tls-protos = TLSv1.2 TLSv1.3' },
  { key: 'tls', type: 'bool', scopes: GF, support: 'no', unless: 'off', note: 'TLSv1.0 and TLSv1.1 are never negotiated: use tls-protos = TLSv1.2 TLSv1.3' },
  { key: 'prefer-server-ciphers', type: 'bool', scopes: GF, support: 'yes' },
  { key: 'ecdh-curve', type: 'string', scopes: G, support: 'yes' },
  { key: 'client-verify', type: 'string', scopes: GF, support: 'yes' },
  { key: 'client-verify-ca', type: 'string', scopes: GF, support: 'yes' },
  { key: 'sni-nomatch-abort', type: 'bool', scopes: GF, support: 'no', unless: 'off', note: 'an unknown server name gets the default certificate' },
  { key: 'ssl-engine', type: 'string', scopes: G, support: 'no', note: 'OpenSSL engines are not supported' },
  { key: 'ssl-handshake-timeout', type: 'number', scopes: G, support: 'yes' },
  { key: 'backend-connect-timeout', type: 'number', scopes: G, support: 'yes' },
  { key: 'backend-refresh', type: 'number', scopes: G, support: 'warn', note: 'the backend name is resolved at every connect anyway' },
  { key: 'workers', type: 'number', scopes: G, support: 'yes' },
  { key: 'backlog', type: 'number', scopes: G, support: 'warn', note: "the kernel's listen backlog is Node's (511)" },
  { key: 'keepalive', type: 'number', scopes: G, support: 'yes' },
  { key: 'chroot', type: 'string', scopes: G, support: 'no', note: 'run tls-terminator in a container instead' },
  { key: 'user', type: 'string', scopes: G, support: 'yes' },
  { key: 'group', type: 'string', scopes: G, support: 'yes' },
  { key: 'daemon', type: 'bool', scopes: G, support: 'yes' },
  { key: 'pidfile', type: 'string', scopes: G, support: 'yes', commandLineOnly: true },
  { key: 'quiet', type: 'bool', scopes: G, support: 'yes' },
  { key: 'log-level', type: 'number', scopes: G, support: 'yes' },
  { key: 'log-filename', type: 'string', scopes: G, support: 'yes' },
  { key: 'syslog', type: 'bool', scopes: G, support: 'no', unless: 'off', note: 'logs go to stdout or log-filename' },
  { key: 'syslog-facility', type: 'string', scopes: G, support: 'no', note: 'logs go to stdout or log-filename' },
  { key: 'write-ip', type: 'bool', scopes: G, support: 'no', unless: 'off', note: 'use write-proxy-v2' },
  { key: 'write-proxy', type: 'bool', scopes: G, support: 'yes' },
  { key: 'write-proxy-v1', type: 'bool', scopes: G, support: 'yes' },
  { key: 'write-proxy-v2', type: 'bool', scopes: G, support: 'yes' },
  { key: 'proxy-proxy', type: 'bool', scopes: G, support: 'no', unless: 'off', note: 'a PROXY header from the client is not read' },
  { key: 'proxy-tlv', type: 'bool', scopes: G, support: 'yes' },
  { key: 'proxy-client-cert', type: 'bool', scopes: G, support: 'no', unless: 'off', note: 'the 0xe0 client-certificate TLV is not written' },
  { key: 'ocsp-dir', type: 'string', scopes: G, support: 'no', note: 'OCSP stapling is not implemented' },
  { key: 'ocsp-verify-staple', type: 'bool', scopes: G, support: 'no', unless: 'off', note: 'OCSP stapling is not implemented' },
  { key: 'ocsp-connect-tmo', type: 'number', scopes: G, support: 'no', note: 'OCSP stapling is not implemented' },
  { key: 'ocsp-resp-tmo', type: 'number', scopes: G, support: 'no', note: 'OCSP stapling is not implemented' },
  { key: 'ocsp-refresh-interval', type: 'number', scopes: G, support: 'no', note: 'OCSP stapling is not implemented' },
  { key: 'session-cache', type: 'number', scopes: G, support: 'no', note: 'sessions resume by tickets and a per-listener cache' },
  { key: 'shared-cache-listen', type: 'string', scopes: G, support: 'no' },
  { key: 'shared-cache-peer', type: 'string', scopes: G, support: 'no' },
  { key: 'shared-cache-if', type: 'string', scopes: G, support: 'no' },
  { key: 'ring-slots', type: 'number', scopes: G, support: 'no' },
  { key: 'ring-data-len', type: 'number', scopes: G, support: 'no' },
  { key: 'send-bufsize', type: 'number', scopes: G, support: 'no' },
  { key: 'recv-bufsize', type: 'number', scopes: G, support: 'no' },
  { key: 'tcp-fastopen', type: 'bool', scopes: G, support: 'no', unless: 'off' },
  { key: 'enable-tcp-fastopen', type: 'bool', scopes: G, support: 'no', unless: 'off' },
  { key: 'client', type: 'bool', scopes: G, support: 'no', unless: 'off', note: 'tls-terminator only terminates TLS' },
]

const byKey = new Map(options.map((o) => [o.key, Object.freeze(o)]))

export function hitchOption(key: string): HitchOption | undefined {
  return byKey.get(key)
}

export const HITCH_KEYS: readonly string[] = options.map((o) => o.key)
