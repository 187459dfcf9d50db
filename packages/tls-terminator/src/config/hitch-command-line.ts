import { UsageError } from '@edgestack/common'
import type { HitchSetting } from './hitch-conf.js'

/**
 * hitch's command line (hitch(8), `hitch --help`): `--config=FILE` and the options that are
 * the same settings as hitch.conf's keys, which hitch applies over the file's. Our edgestack
 * flags (`--workers`, `--metrics`, `-t`, ...) are left for the CLI to read as it always does.
 *
 * How the CLI tells hitch's command line from stunnel's: `--config`, `--frontend` or
 * `--backend` (hitch's ways to say where to listen and forward) make it hitch's. Otherwise a
 * FILE is a stunnel.conf, as before.
 */

/** Long options taking a value (`--name=V` or `--name V`), as getopt_long reads them. */
const WITH_VALUE = new Set([
  'config',
  'tls-protos',
  'ciphers',
  'ssl-engine',
  'backend',
  'frontend',
  'recv-bufsize',
  'send-bufsize',
  'backlog',
  'keepalive',
  'backend-refresh',
  'chroot',
  'user',
  'group',
  'log-level',
  'log-filename',
  'syslog-facility',
  'alpn-protos',
  'ocsp-dir',
  'pidfile',
])
/** Long options with an optional `=on|off` (`--name` alone is on). */
const OPTIONAL_BOOL = new Set([
  'prefer-server-ciphers',
  'enable-tcp-fastopen',
  'quiet',
  'syslog',
  'daemon',
  'write-ip',
  'write-proxy-v1',
  'write-proxy-v2',
  'write-proxy',
  'proxy-proxy',
  'sni-nomatch-abort',
  'client',
  'tls',
  'ssl',
])
const SHORT: Readonly<Record<string, string>> = {
  c: 'ciphers',
  e: 'ssl-engine',
  O: 'prefer-server-ciphers',
  b: 'backend',
  f: 'frontend',
  B: 'backlog',
  k: 'keepalive',
  R: 'backend-refresh',
  r: 'chroot',
  u: 'user',
  g: 'group',
  q: 'quiet',
  L: 'log-level',
  l: 'log-filename',
  s: 'syslog',
  p: 'pidfile',
}

/** True when argv is hitch's form (see above). */
export function isHitchCommandLine(argv: readonly string[]): boolean {
  return argv.some((a) => /^--(config|frontend|backend)(=|$)/.test(a))
}

/** A hitch option given where a stunnel.conf is read: its name, for a one-line refusal. */
export function hitchOnlyOption(argv: readonly string[]): string | undefined {
  for (const a of argv) {
    const name = /^--([a-z0-9-]+)/.exec(a)?.[1]
    if (name && name !== 'alpn-protos' && (WITH_VALUE.has(name) || OPTIONAL_BOOL.has(name))) return `--${name}`
  }
  return undefined
}

export interface HitchCommandLine {
  config: string | undefined
  /** The flags as settings, in order, to apply over the file's. */
  settings: HitchSetting[]
  /** Everything that is not hitch's: for the CLI's own parser (positionals are PEM files there). */
  rest: string[]
}

export function parseHitchCommandLine(argv: readonly string[]): HitchCommandLine {
  let config: string | undefined
  const settings: HitchSetting[] = []
  const rest: string[] = []
  const add = (key: string, value: string, words = false) => {
    const v = words ? { kind: 'words' as const, words: value.split(/\s+/).filter(Boolean) } : { kind: 'string' as const, text: value }
    settings.push({ key, value: v, position: undefined, text: `--${key}=${value}` })
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    let name: string | undefined
    let inline: string | undefined
    if (a.startsWith('--')) {
      const eq = a.indexOf('=')
      name = eq === -1 ? a.slice(2) : a.slice(2, eq)
      inline = eq === -1 ? undefined : a.slice(eq + 1)
    } else if (/^-[a-zA-Z]/.test(a) && SHORT[a[1] as string]) {
      name = SHORT[a[1] as string]
      inline = a.length > 2 ? a.slice(2) : undefined
    } else if (a === '-n') {
      // hitch's -n is --workers, which the CLI reads.
      rest.push('--workers')
      continue
    }
    if (name === undefined || (!WITH_VALUE.has(name) && !OPTIONAL_BOOL.has(name))) {
      rest.push(a)
      continue
    }
    if (OPTIONAL_BOOL.has(name)) {
      if (inline !== undefined && !/^(on|off)$/.test(inline)) {
        throw new UsageError(`Invalid argument '${inline}' for option '${name}': expected one of 'on' or 'off'`)
      }
      add(name, inline ?? 'on')
      continue
    }
    const value = inline ?? argv[++i]
    if (value === undefined) throw new UsageError(`--${name}: a value is required`)
    if (name === 'config') config = value
    else add(name, value, name === 'tls-protos')
  }
  return { config, settings, rest }
}
