import { constants, createHash, randomBytes, X509Certificate } from 'node:crypto'
import tls from 'node:tls'
import {
  type CertificateInfo,
  configError,
  EXPIRY_WARNING_DAYS,
  type FileOption,
  loadKeyPair,
  loadTrustedCertificates,
  readPem,
} from './certificates.js'
import type { ListenerModel, ServiceModel, TerminatorModel } from './config/model.js'

/** A service with everything read from disk and its TLS context built: ready to serve. */
export interface PreparedService {
  readonly model: ServiceModel
  readonly contextOptions: tls.SecureContextOptions
  readonly context: tls.SecureContext
  /** verifyPeer: SHA-256 fingerprints of the certificates a client may present. */
  readonly pinned: ReadonlySet<string> | undefined
  readonly certificate: CertificateInfo
  /** The client certificate checks have to run after the handshake (see connection.ts). */
  readonly checkClientAfterHandshake: boolean
}

export interface PreparedListener {
  readonly model: ListenerModel
  readonly primary: PreparedService
  readonly virtualHosts: readonly { readonly pattern: string; readonly service: PreparedService }[]
  /** Server-wide options: OpenSSL asks for a client certificate per listener, not per SNI name. */
  readonly requestCert: boolean
  readonly rejectUnauthorized: boolean
}

export interface Prepared {
  readonly model: TerminatorModel
  readonly listeners: readonly PreparedListener[]
  /** Lines to log at info (certificate summaries) and warn (expiry). */
  readonly info: string[]
  readonly warnings: string[]
}

export interface PrepareOptions {
  /**
   * The secret session ticket keys are derived from when the config sets none: made once per
   * process (or by the cluster primary for all workers) so that sessions resume across workers
   * and across reloads that leave a service unchanged.
   */
  ticketKeys?: Buffer
  now?: Date
}

/**
 * Reads certificates, keys and CAs and builds every secure context, so that any problem
 * (unreadable file, mismatched key, unknown cipher or curve) stops start-up or a reload
 * before a port is bound or the running configuration is touched.
 */
export async function prepare(model: TerminatorModel, opts: PrepareOptions = {}): Promise<Prepared> {
  const info: string[] = []
  const warnings: string[] = []
  const cache = new Map<ServiceModel, Promise<PreparedService>>()
  const service = (s: ServiceModel) => {
    let p = cache.get(s)
    if (!p) {
      p = prepareService(s, opts, info, warnings)
      cache.set(s, p)
    }
    return p
  }
  const listeners: PreparedListener[] = []
  for (const l of model.listeners) {
    const primary = await service(l.service)
    const virtualHosts = []
    for (const v of l.virtualHosts) virtualHosts.push({ pattern: v.pattern, service: await service(v.service) })
    const all = [primary, ...virtualHosts.map((v) => v.service)]
    const policies = all.map((s) => s.model.clientCerts)
    const requestCert = policies.some((c) => c.requestCert)
    // Let OpenSSL refuse during the handshake (a proper alert) only when every service of the
    // listener wants the same strict check; otherwise each service checks after the handshake.
    const strict = (c: (typeof policies)[number]) => c.verifyChain && c.requireCert && !c.verifyPeer
    const rejectUnauthorized = all.length === 1 && policies.every(strict)
    listeners.push({ model: l, primary, virtualHosts, requestCert, rejectUnauthorized })
  }
  return { model, listeners, info, warnings }
}

async function prepareService(s: ServiceModel, opts: PrepareOptions, info: string[], warnings: string[]): Promise<PreparedService> {
  const file = (directive: string, path: string): FileOption => ({ path, directive, position: s.positions[directive] })
  const pair = await loadKeyPair(file('cert', s.cert), file('key', s.key), opts.now)
  const c = pair.info
  info.push(`[${s.name}] certificate ${s.cert}: subject "${c.subject}", names ${c.altNames}, expires ${c.validTo.toISOString()}`)
  if (c.daysLeft < 0) warnings.push(`[${s.name}] certificate ${s.cert} EXPIRED on ${c.validTo.toISOString()}`)
  else if (c.daysLeft < EXPIRY_WARNING_DAYS) {
    warnings.push(`[${s.name}] certificate ${s.cert} expires in ${c.daysLeft} days (${c.validTo.toISOString()})`)
  }

  const cc = s.clientCerts
  const trusted = await loadTrustedCertificates(
    cc.caFile ? file('CAfile', cc.caFile) : undefined,
    cc.caPath ? file('CApath', cc.caPath) : undefined,
  )
  const crl = cc.crlFile ? await readPem(file('CRLfile', cc.crlFile), 'CRL file') : undefined

  let secureOptions = (s.optionsSet & ~s.optionsClear) | constants.SSL_OP_NO_RENEGOTIATION
  if (!s.sessionResume) secureOptions |= constants.SSL_OP_NO_TICKET
  const scope = serviceScope(s, opts.ticketKeys, trusted)

  const contextOptions: tls.SecureContextOptions = {
    cert: pair.cert,
    key: pair.key,
    minVersion: s.sslVersionMin,
    maxVersion: s.sslVersionMax,
    ciphers: cipherString(s),
    // The client's order wins, as in stunnel (and OpenSSL), unless `options =
    // CIPHER_SERVER_PREFERENCE`; Node's servers otherwise default to their own order.
    honorCipherOrder: (secureOptions & constants.SSL_OP_CIPHER_SERVER_PREFERENCE) !== 0,
    secureOptions,
    sessionTimeout: s.sessionResume ? s.sessionCacheTimeoutS : 0,
    // OpenSSL resumes a session only in the context it was made in (stunnel uses the service
    // name); ours also changes with who may connect, as the ticket keys below do.
    sessionIdContext: scope.subarray(0, 16).toString('hex'),
    ecdhCurve: s.curves ?? STUNNEL_CURVES,
    ...(trusted.length > 0 ? { ca: trusted } : {}),
    ...(crl ? { crl } : {}),
    ...(ticketKeysFor(s, opts.ticketKeys, scope) ?? {}),
  }
  let context: tls.SecureContext
  try {
    context = tls.createSecureContext(contextOptions)
  } catch (err) {
    throw contextError(s, err as Error)
  }
  const pinned = cc.verifyPeer ? new Set(trusted.map((t) => new X509Certificate(t).fingerprint256)) : undefined
  return {
    model: s,
    contextOptions,
    context,
    pinned,
    certificate: c,
    checkClientAfterHandshake: cc.verifyChain || cc.verifyPeer || cc.requireCert,
  }
}

/**
 * stunnel's defaults when the file is silent (`stunnel -version`): `ciphers =
 * HIGH:!aNULL:!SSLv2:!DH:!kDHEPSK`, its TLS 1.3 `ciphersuites` and `curves`, and security level 2, which
 * stunnel sets because OpenSSL's default (1) is weaker. Node takes TLS 1.3 suites (TLS_*) and
 * TLS 1.2 ciphers in one list; the level goes first so that a `@SECLEVEL` in `ciphers` wins.
 */
const STUNNEL_CIPHERS = 'HIGH:!aNULL:!SSLv2:!DH:!kDHEPSK'
const STUNNEL_CIPHERSUITES = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256'
const STUNNEL_SECURITY_LEVEL = 2
/**
 * Without it OpenSSL would also offer the finite-field groups (ffdhe*) in TLS 1.3. On OpenSSL
 * 3.5 (Node 24) the hybrid post-quantum group leads, as it does in OpenSSL 3.5's own default
 * list, so a harvested handshake cannot be decrypted later; clients without it fall back to
 * X25519 by a HelloRetryRequest or their own key share. stunnel 5.68 on OpenSSL 3.0 lacks it.
 */
const STUNNEL_CURVES = `${hasMlKemGroup() ? 'X25519MLKEM768:' : ''}X25519:P-256:X448:P-521:P-384`

/** Whether this OpenSSL knows X25519MLKEM768 (3.5 and later); asked once, at load. */
function hasMlKemGroup(): boolean {
  try {
    tls.createSecureContext({ ecdhCurve: 'X25519MLKEM768' })
    return true
  } catch {
    return false
  }
}

function cipherString(s: ServiceModel): string {
  return `${s.ciphersuites ?? STUNNEL_CIPHERSUITES}:@SECLEVEL=${s.securityLevel ?? STUNNEL_SECURITY_LEVEL}:${s.ciphers ?? STUNNEL_CIPHERS}`
}

/**
 * What a resumed session is bound to. A resumed session skips certificate verification, so a
 * session made by one service must not resume on another, nor after a reload changed who may
 * connect: the hash covers the service's name, its client-certificate policy and CAs, and the
 * ticket secret. Processes with the same secret and config (cluster workers) agree on it.
 */
function serviceScope(s: ServiceModel, base: Buffer | undefined, trusted: Buffer[]): Buffer {
  const secret = s.ticketKeySecret && s.ticketMacSecret ? Buffer.concat([s.ticketKeySecret, s.ticketMacSecret]) : base
  const scope = createHash('sha256')
  if (secret) scope.update(secret)
  scope.update(s.name).update(JSON.stringify(s.clientCerts))
  for (const t of trusted) scope.update(t)
  return scope.digest()
}

/**
 * Session ticket keys (RFC 5077). stunnel's ticketKeySecret is the AES key and ticketMacSecret
 * the HMAC key; Node wants 48 bytes (16 name, 16 HMAC, 16 AES), derived here by hashing them
 * (or the per-process secret) within the service's scope: stricter than stunnel, whose tickets
 * resume on any service with the same secrets.
 */
function ticketKeysFor(s: ServiceModel, base: Buffer | undefined, scope: Buffer): { ticketKeys: Buffer } | undefined {
  if (!(s.ticketKeySecret && s.ticketMacSecret) && !base) return undefined
  const h = (label: string) => createHash('sha256').update(label).update(scope).digest().subarray(0, 16)
  return { ticketKeys: Buffer.concat([h('name'), h('hmac'), h('aes')]) }
}

export function randomTicketKeys(): Buffer {
  return randomBytes(48)
}

function contextError(s: ServiceModel, err: Error) {
  const m = err.message
  const pick = (...names: string[]) => names.find((n) => s.positions[n]) ?? (names[0] as string)
  let directive: string
  if (/cipher/i.test(m)) directive = pick('ciphers', 'ciphersuites', 'securityLevel')
  else if (/curve|group/i.test(m)) directive = 'curves'
  else if (/crl/i.test(m)) directive = 'CRLfile'
  else if (/key|certificate|ee_key_too_small|md too weak/i.test(m)) directive = 'cert'
  else directive = 'options'
  return configError(`cannot build the TLS context: ${m}`, { position: s.positions[directive] ?? s.position, directive })
}
