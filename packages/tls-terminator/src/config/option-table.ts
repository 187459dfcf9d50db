/**
 * Every option stunnel 5 knows (stunnel(8), "GLOBAL OPTIONS" and "SERVICE-LEVEL OPTIONS"), with
 * what we do with it. Names are matched case-insensitively, as stunnel's parser does.
 *
 * - `yes`: implemented.
 * - `warn`: it only tunes something Node and OpenSSL already do for us; accepted with a warning.
 * - `no`: refused at start-up, because silently ignoring it would change behaviour (often security).
 *   `unless` names the values that mean what we always do ("off", the default), which we accept.
 *
 * `warn` is only for options whose observable behaviour is stunnel's anyway; the README lists
 * them, and test/option-table.test.ts walks this table against the README and the parser.
 */
export type Scope = 'global' | 'service' | 'both'

export interface OptionSpec {
  readonly name: string
  readonly scope: Scope
  readonly support: 'yes' | 'warn' | 'no'
  /** May appear several times in one section (the values accumulate). */
  readonly repeat?: boolean
  /** The value (or values, lower-case) that mean what we always do: accepted without a word. */
  readonly unless?: string | readonly string[]
  readonly note?: string
}

const specs: OptionSpec[] = [
  // global
  { name: 'chroot', scope: 'global', support: 'no', note: 'run it in a container or with systemd RootDirectory=' },
  { name: 'compression', scope: 'global', support: 'warn', note: 'TLS compression is never enabled (CRIME)' },
  { name: 'debug', scope: 'both', support: 'yes' },
  { name: 'EGD', scope: 'global', support: 'warn', note: 'Node seeds OpenSSL itself' },
  { name: 'engine', scope: 'global', support: 'no' },
  { name: 'engineCtrl', scope: 'global', support: 'no' },
  { name: 'engineDefault', scope: 'global', support: 'no' },
  { name: 'fips', scope: 'global', support: 'no', unless: 'no' },
  { name: 'foreground', scope: 'global', support: 'yes' },
  { name: 'iconActive', scope: 'global', support: 'no', note: 'Windows only; stunnel on Unix refuses it too' },
  { name: 'iconError', scope: 'global', support: 'no', note: 'Windows only; stunnel on Unix refuses it too' },
  { name: 'iconIdle', scope: 'global', support: 'no', note: 'Windows only; stunnel on Unix refuses it too' },
  { name: 'include', scope: 'both', support: 'yes' },
  { name: 'log', scope: 'global', support: 'no', unless: 'append', note: 'the output file is always appended to' },
  { name: 'output', scope: 'global', support: 'yes' },
  { name: 'pid', scope: 'global', support: 'yes' },
  { name: 'RNDbytes', scope: 'global', support: 'warn', note: 'Node seeds OpenSSL itself' },
  { name: 'RNDfile', scope: 'global', support: 'warn', note: 'Node seeds OpenSSL itself' },
  { name: 'RNDoverwrite', scope: 'global', support: 'warn', note: 'Node seeds OpenSSL itself' },
  { name: 'service', scope: 'global', support: 'warn', note: 'we do not log to syslog' },
  { name: 'setgid', scope: 'global', support: 'yes' },
  { name: 'setuid', scope: 'global', support: 'yes' },
  { name: 'syslog', scope: 'global', support: 'warn', note: 'we log to stdout or to output' },
  { name: 'taskbar', scope: 'global', support: 'no', note: 'Windows only; stunnel on Unix refuses it too' },
  // service level (in the global section they are defaults for every service, as in stunnel)
  { name: 'accept', scope: 'service', support: 'yes' },
  { name: 'CAengine', scope: 'both', support: 'no' },
  { name: 'CApath', scope: 'both', support: 'yes' },
  { name: 'CAfile', scope: 'both', support: 'yes' },
  { name: 'cert', scope: 'both', support: 'yes' },
  { name: 'checkEmail', scope: 'both', support: 'no' },
  { name: 'checkHost', scope: 'both', support: 'no' },
  { name: 'checkIP', scope: 'both', support: 'no' },
  { name: 'ciphers', scope: 'both', support: 'yes' },
  { name: 'ciphersuites', scope: 'both', support: 'yes' },
  { name: 'client', scope: 'both', support: 'no', unless: 'no', note: 'tls-terminator only terminates TLS' },
  { name: 'config', scope: 'both', support: 'no' },
  { name: 'connect', scope: 'service', support: 'yes', repeat: true },
  { name: 'CRLpath', scope: 'both', support: 'no', note: 'use CRLfile' },
  { name: 'CRLfile', scope: 'both', support: 'yes' },
  { name: 'curves', scope: 'both', support: 'yes' },
  { name: 'logId', scope: 'both', support: 'no', unless: 'sequential', note: 'connections are numbered in sequence per process' },
  { name: 'delay', scope: 'both', support: 'warn', note: 'backend names are resolved at every connect anyway' },
  { name: 'engineId', scope: 'both', support: 'no' },
  { name: 'engineNum', scope: 'both', support: 'no' },
  { name: 'exec', scope: 'service', support: 'no' },
  { name: 'execArgs', scope: 'service', support: 'no' },
  { name: 'failover', scope: 'both', support: 'yes' },
  { name: 'ident', scope: 'both', support: 'no' },
  { name: 'key', scope: 'both', support: 'yes' },
  { name: 'libwrap', scope: 'both', support: 'no', unless: 'no' },
  { name: 'local', scope: 'both', support: 'yes' },
  { name: 'OCSP', scope: 'both', support: 'no' },
  { name: 'OCSPaia', scope: 'both', support: 'no', unless: 'no' },
  { name: 'OCSPflag', scope: 'both', support: 'no' },
  { name: 'OCSPnonce', scope: 'both', support: 'no', unless: 'no' },
  { name: 'options', scope: 'both', support: 'yes', repeat: true },
  { name: 'protocol', scope: 'both', support: 'yes' },
  { name: 'protocolAuthentication', scope: 'both', support: 'no' },
  { name: 'protocolDomain', scope: 'both', support: 'no' },
  { name: 'protocolHeader', scope: 'both', support: 'no' },
  { name: 'protocolHost', scope: 'both', support: 'no' },
  { name: 'protocolPassword', scope: 'both', support: 'no' },
  { name: 'protocolUsername', scope: 'both', support: 'no' },
  { name: 'PSKidentity', scope: 'both', support: 'no' },
  { name: 'PSKsecrets', scope: 'both', support: 'no' },
  { name: 'pty', scope: 'service', support: 'no', unless: 'no' },
  { name: 'redirect', scope: 'both', support: 'no' },
  { name: 'renegotiation', scope: 'both', support: 'yes' },
  { name: 'reset', scope: 'both', support: 'warn', note: 'errors close the connection' },
  { name: 'retry', scope: 'both', support: 'no', unless: 'no' },
  { name: 'securityLevel', scope: 'both', support: 'yes' },
  { name: 'requireCert', scope: 'both', support: 'yes' },
  { name: 'sessionCacheSize', scope: 'both', support: 'yes' },
  { name: 'sessionCacheTimeout', scope: 'both', support: 'yes' },
  { name: 'sessionResume', scope: 'both', support: 'yes' },
  { name: 'sessiond', scope: 'both', support: 'no', note: 'share ticketKeySecret/ticketMacSecret instead' },
  { name: 'sni', scope: 'service', support: 'yes', repeat: true },
  {
    name: 'socket',
    scope: 'both',
    support: 'no',
    unless: ['a:tcp_nodelay=1', 'l:tcp_nodelay=1', 'r:tcp_nodelay=1'],
    note: 'only TCP_NODELAY=1, which is set on both sides already',
  },
  { name: 'sslVersion', scope: 'both', support: 'yes' },
  { name: 'sslVersionMax', scope: 'both', support: 'yes' },
  { name: 'sslVersionMin', scope: 'both', support: 'yes' },
  { name: 'stack', scope: 'both', support: 'warn', note: 'Node has no per-connection threads' },
  { name: 'ticketKeySecret', scope: 'both', support: 'yes' },
  { name: 'ticketMacSecret', scope: 'both', support: 'yes' },
  { name: 'TIMEOUTbusy', scope: 'both', support: 'yes' },
  { name: 'TIMEOUTclose', scope: 'both', support: 'yes' },
  { name: 'TIMEOUTconnect', scope: 'both', support: 'yes' },
  { name: 'TIMEOUTidle', scope: 'both', support: 'yes' },
  { name: 'TIMEOUTocsp', scope: 'both', support: 'no' },
  { name: 'transparent', scope: 'both', support: 'no', unless: 'none' },
  { name: 'verify', scope: 'both', support: 'yes' },
  { name: 'verifyChain', scope: 'both', support: 'yes' },
  { name: 'verifyPeer', scope: 'both', support: 'yes' },
]

const byLowerName = new Map(specs.map((s) => [s.name.toLowerCase(), Object.freeze(s)]))

/** Every option name, as the table spells it. */
export const OPTION_NAMES: readonly string[] = specs.map((s) => s.name)

export function optionSpec(name: string): OptionSpec | undefined {
  return byLowerName.get(name.toLowerCase())
}
