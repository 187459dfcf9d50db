import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError, type SourcePosition } from '@edgestack/common'

const DAY_MS = 24 * 60 * 60 * 1000
/** A certificate this close to its end gets a warning at every start and reload. */
export const EXPIRY_WARNING_DAYS = 30

export interface CertificateInfo {
  subject: string
  altNames: string
  validTo: Date
  /** Whole days left; negative once expired. */
  daysLeft: number
}

export interface LoadedKeyPair {
  cert: Buffer
  key: Buffer
  info: CertificateInfo
}

/** Where a file option came from, so an error reads `file:line: cert: problem`. */
export interface FileOption {
  path: string
  position: SourcePosition | undefined
  directive: string
}

export function configError(problem: string, opt: { position: SourcePosition | undefined; directive: string }): ConfigError {
  // Flags have no position; their messages stay the bare problem, as the CLI has always printed.
  return opt.position ? new ConfigError(problem, { position: opt.position, directive: opt.directive }) : new ConfigError(problem)
}

export async function readPem(opt: FileOption, what: string): Promise<Buffer> {
  try {
    return await readFile(opt.path)
  } catch (err) {
    throw configError(`cannot read ${what} ${opt.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, opt)
  }
}

/**
 * Loads a certificate chain and its key and refuses a pair that does not belong together,
 * which OpenSSL would otherwise only report as "key values mismatch".
 */
export async function loadKeyPair(certOpt: FileOption, keyOpt: FileOption, now = new Date()): Promise<LoadedKeyPair> {
  const [cert, key] = await Promise.all([readPem(certOpt, 'certificate'), readPem(keyOpt, 'key')])
  let x509: X509Certificate
  try {
    x509 = new X509Certificate(cert)
  } catch (err) {
    throw configError(`${certOpt.path} is not a PEM certificate: ${(err as Error).message}`, certOpt)
  }
  let matches: boolean
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key))
  } catch (err) {
    throw configError(`${keyOpt.path} is not a usable private key: ${(err as Error).message}`, keyOpt)
  }
  if (!matches) throw configError(`key ${keyOpt.path} does not match certificate ${certOpt.path}`, keyOpt)
  return { cert, key, info: describe(x509, now) }
}

export function describe(x509: X509Certificate, now = new Date()): CertificateInfo {
  const validTo = new Date(x509.validTo)
  return {
    subject: x509.subject.replaceAll('\n', ', '),
    altNames: x509.subjectAltName ?? '-',
    validTo,
    daysLeft: Math.floor((validTo.getTime() - now.getTime()) / DAY_MS),
  }
}

/** Splits a PEM bundle into its certificates. */
export function splitPem(bundle: Buffer): Buffer[] {
  const text = bundle.toString('latin1')
  const out: Buffer[] = []
  const END = '-----END CERTIFICATE-----'
  let from = text.indexOf('-----BEGIN CERTIFICATE-----')
  while (from !== -1) {
    const end = text.indexOf(END, from)
    if (end === -1) break
    out.push(Buffer.from(text.slice(from, end + END.length), 'latin1'))
    from = text.indexOf('-----BEGIN CERTIFICATE-----', end)
  }
  return out
}

/**
 * CAfile plus every certificate file in CApath. OpenSSL reads CApath lazily by subject hash
 * (`c_rehash` names); we read the directory once at load, so a reload picks up new files.
 */
export async function loadTrustedCertificates(caFile: FileOption | undefined, caPath: FileOption | undefined): Promise<Buffer[]> {
  const certs: Buffer[] = []
  if (caFile) certs.push(...splitPem(await readPem(caFile, 'CA file')))
  if (caPath) {
    let names: string[]
    try {
      names = (await readdir(caPath.path)).sort()
    } catch (err) {
      throw configError(`cannot read CA directory ${caPath.path}: ${(err as NodeJS.ErrnoException).code}`, caPath)
    }
    for (const n of names) {
      const content = await readFile(join(caPath.path, n)).catch(() => undefined)
      if (content) certs.push(...splitPem(content))
    }
  }
  for (const [i, c] of certs.entries()) {
    try {
      new X509Certificate(c)
    } catch (err) {
      const opt = (caFile ?? caPath) as FileOption
      throw configError(`certificate #${i + 1} of ${opt.path} is not valid: ${(err as Error).message}`, opt)
    }
  }
  const opt = caFile ?? caPath
  if (opt && certs.length === 0) throw configError(`no certificate found in ${opt.path}`, opt)
  return certs
}
