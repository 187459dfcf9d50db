import type { RawOption } from './build-model.js'
import * as parse from './values.js'

/** The options that decide whether and how a client certificate is checked. */
export const CLIENT_CERT_OPTIONS = new Set(['verify', 'verifyChain', 'verifyPeer', 'requireCert'])

export interface ClientCertFlags {
  requestCert: boolean
  requireCert: boolean
  verifyChain: boolean
  verifyPeer: boolean
}

/**
 * stunnel sets these flags line by line, in file order (the global section's lines first, as
 * the starting point of every service), so order matters: `requireCert = no` followed by
 * `verifyChain = yes` requires a certificate, the other way round does not (options.c).
 *
 * - `verify = N` (stunnel 4's knob) sets all four: it asks for a certificate, requires one from
 *   level 2, verifies the chain at levels 1-3 and pins the peer from level 3.
 * - `verifyChain = yes` / `verifyPeer = yes` also ask for and require one; `no` clears only
 *   itself.
 * - `requireCert = yes` asks for and requires one; `no` clears only the requirement.
 *
 * `value` positions a bad value's message at its line.
 */
export function foldClientCertOptions(lines: readonly RawOption[], value: <T>(o: RawOption, fn: (v: string) => T) => T): ClientCertFlags {
  const f: ClientCertFlags = { requestCert: false, requireCert: false, verifyChain: false, verifyPeer: false }
  for (const line of lines) {
    const name = CLIENT_CERT_NAMES.get(line.name.toLowerCase())
    if (name === 'verify') {
      const level = value(line, (v) => parse.integer(v, 0, 4))
      f.requestCert = true
      f.requireCert = level >= 2
      f.verifyChain = level >= 1 && level <= 3
      f.verifyPeer = level >= 3
      continue
    }
    const on = value(line, parse.yesNo)
    if (name === 'requireCert') f.requireCert = on
    else if (name === 'verifyChain') f.verifyChain = on
    else if (name === 'verifyPeer') f.verifyPeer = on
    if (on) {
      f.requestCert = true
      f.requireCert = true
    }
  }
  return f
}

const CLIENT_CERT_NAMES = new Map([...CLIENT_CERT_OPTIONS].map((n) => [n.toLowerCase(), n]))
