import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import forge from 'node-forge'

/**
 * A local certificate authority and a server certificate signed by it, for development:
 * valid for localhost, 127.0.0.1 and ::1. Browsers and clients trust the stack once they
 * trust `ca.crt`; nothing here is meant for production.
 */
export interface DevCertificateFiles {
  caCert: string
  caKey: string
  cert: string
  key: string
}

export interface DevCertificateOptions {
  /** Extra DNS names for the server certificate (e.g. compose service names). */
  dnsNames?: string[]
  days?: number
  keyBits?: number
}

export function devCertificatePaths(dir: string): DevCertificateFiles {
  return {
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    cert: join(dir, 'server.crt'),
    key: join(dir, 'server.key'),
  }
}

/** Makes the CA and server certificate in `dir`, unless both are already there. */
export async function ensureDevCertificates(
  dir: string,
  opts: DevCertificateOptions = {},
): Promise<{ files: DevCertificateFiles; created: boolean }> {
  const files = devCertificatePaths(dir)
  const present = await Promise.all(Object.values(files).map((f) => readFile(f).then(() => true, () => false)))
  if (present.every(Boolean)) return { files, created: false }

  const days = opts.days ?? 825
  const keyBits = opts.keyBits ?? 2048
  const ca = forge.pki.rsa.generateKeyPair({ bits: keyBits })
  const caCert = forge.pki.createCertificate()
  caCert.publicKey = ca.publicKey
  caCert.serialNumber = randomSerial()
  setValidity(caCert, days)
  const caSubject = [
    { name: 'commonName', value: 'edgestack development CA' },
    { name: 'organizationName', value: 'edgestack' },
  ]
  caCert.setSubject(caSubject)
  caCert.setIssuer(caSubject)
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ])
  caCert.sign(ca.privateKey, forge.md.sha256.create())

  const server = forge.pki.rsa.generateKeyPair({ bits: keyBits })
  const cert = forge.pki.createCertificate()
  cert.publicKey = server.publicKey
  cert.serialNumber = randomSerial()
  // Apple platforms refuse TLS server certificates valid for more than 825 days in total.
  setValidity(cert, Math.min(days, 825))
  cert.setSubject([{ name: 'commonName', value: 'localhost' }])
  cert.setIssuer(caSubject)
  const dnsNames = ['localhost', ...(opts.dnsNames ?? [])]
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        ...dnsNames.map((value) => ({ type: 2, value })),
        { type: 7, ip: '127.0.0.1' },
        { type: 7, ip: '::1' },
      ],
    },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ])
  cert.sign(ca.privateKey, forge.md.sha256.create())

  await mkdir(dir, { recursive: true })
  await writeFile(files.caCert, forge.pki.certificateToPem(caCert))
  await writeFile(files.caKey, forge.pki.privateKeyToPem(ca.privateKey), { mode: 0o600 })
  await writeFile(files.cert, forge.pki.certificateToPem(cert))
  await writeFile(files.key, forge.pki.privateKeyToPem(server.privateKey), { mode: 0o600 })
  return { files, created: true }
}

/**
 * notBefore an hour back (a client whose clock is a little behind still accepts it), and
 * notAfter `days` after notBefore: Apple platforms and testssl count the whole span, so
 * 825 days means 825 days in total, not 825 days from now plus the hour.
 */
function setValidity(cert: forge.pki.Certificate, days: number): void {
  const notBefore = Date.now() - 60 * 60 * 1000
  cert.validity.notBefore = new Date(notBefore)
  cert.validity.notAfter = new Date(notBefore + days * 24 * 60 * 60 * 1000)
}

function randomSerial(): string {
  // Positive, 16 bytes: the high bit cleared so DER does not read it as negative.
  const bytes = forge.random.getBytesSync(16)
  return (String.fromCharCode(bytes.charCodeAt(0) & 0x7f) + bytes.slice(1))
    .split('')
    .map((c) => c.charCodeAt(0).toString(16).padStart(2, '0'))
    .join('')
}
