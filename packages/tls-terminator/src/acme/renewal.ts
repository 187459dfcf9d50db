import { X509Certificate } from 'node:crypto'

/** A certificate on disk, as much of it as renewal needs. */
export interface HeldCertificate {
  notBefore: Date
  notAfter: Date
  names: string[]
  /** RFC 9773 §4.1's CertID: base64url(AKI keyIdentifier) "." base64url(serial DER). */
  certId: string | undefined
}

export function readHeldCertificate(pem: string | Buffer): HeldCertificate {
  const x = new X509Certificate(pem)
  return {
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    names: (x.subjectAltName ?? '')
      .split(', ')
      .filter((n) => n.startsWith('DNS:'))
      .map((n) => n.slice(4)),
    certId: certIdOf(x),
  }
}

/**
 * RFC 9773 §4.1: the authority key identifier's keyIdentifier and the serial number's DER
 * content octets (with a leading 0x00 when the high bit is set), each base64url without
 * padding. Node gives the serial as hex and no AKI accessor, so the extension is found in the
 * DER by its OID (2.5.29.35).
 */
export function certIdOf(x: X509Certificate): string | undefined {
  const aki = authorityKeyId(x.raw)
  if (!aki) return undefined
  let serial = Buffer.from(x.serialNumber.length % 2 ? `0${x.serialNumber}` : x.serialNumber, 'hex')
  if ((serial[0] ?? 0) & 0x80) serial = Buffer.concat([Buffer.from([0]), serial])
  return `${aki.toString('base64url')}.${serial.toString('base64url')}`
}

const AKI_OID = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23])

/** The keyIdentifier [0] of the AuthorityKeyIdentifier extension, read from the DER. */
function authorityKeyId(der: Buffer): Buffer | undefined {
  const at = der.indexOf(AKI_OID)
  if (at === -1) return undefined
  // OID, optional BOOLEAN critical, then OCTET STRING wrapping SEQUENCE { [0] keyIdentifier ... }.
  let i = at + AKI_OID.length
  if (der[i] === 0x01) i += 2 + (der[i + 1] ?? 0)
  if (der[i] !== 0x04) return undefined
  i += 1 + lengthBytes(der, i + 1)
  if (der[i] !== 0x30) return undefined
  i += 1 + lengthBytes(der, i + 1)
  if (der[i] !== 0x80) return undefined
  const len = der[i + 1] ?? 0
  return der.subarray(i + 2, i + 2 + len)
}

/** How many bytes a DER length takes (short or long form). */
function lengthBytes(der: Buffer, at: number): number {
  const first = der[at] ?? 0
  return first < 0x80 ? 1 : 1 + (first & 0x7f)
}

/** RFC 9773 §4.2: the window the CA suggests, and when to ask again. */
export interface RenewalInfo {
  start: Date
  end: Date
  retryAfterMs: number | undefined
}

export interface RenewalPlan {
  /** When to renew (now or earlier: renew now). */
  at: Date
  why: string
}

/**
 * When to renew. With the CA's renewal window (ARI), a moment chosen uniformly inside it, as
 * RFC 9773 §4.2 asks so that a CA's clients do not all arrive at once. Without one, when
 * `renewBeforeMs` is left, or, by default, when a third of the lifetime is left: certbot's
 * 30 days of a 90-day certificate, and still a margin as lifetimes shrink toward 47 days.
 */
export function planRenewal(
  held: HeldCertificate,
  opts: { renewBeforeMs?: number | undefined; ari?: RenewalInfo | undefined; random?: () => number },
): RenewalPlan {
  if (opts.ari) {
    const { start, end } = opts.ari
    const span = Math.max(0, end.getTime() - start.getTime())
    const at = new Date(start.getTime() + Math.floor(span * (opts.random ?? Math.random)()))
    return { at, why: `the CA's renewal window ${start.toISOString()} to ${end.toISOString()} (ARI)` }
  }
  const lifetime = held.notAfter.getTime() - held.notBefore.getTime()
  const before = opts.renewBeforeMs ?? Math.floor(lifetime / 3)
  const at = new Date(held.notAfter.getTime() - before)
  return { at, why: `${Math.round(before / 1000)} s before it expires at ${held.notAfter.toISOString()}` }
}
