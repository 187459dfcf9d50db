import https from 'node:https'
import acme from 'acme-client'
import type { ChallengeResponder } from './responders.js'
import type { RenewalInfo } from './renewal.js'

export interface Issued {
  certPem: string
  keyPem: string
}

/**
 * One order of RFC 8555 §7.4, start to certificate: the identifiers, each authorization's
 * challenge of the responder's type answered and removed again, a fresh P-256 key and its CSR,
 * finalize, download. `replaces` (RFC 9773 §5) tells an ARI-aware CA which certificate this
 * one renews; it is sent only to a CA whose directory has `renewalInfo`.
 */
export async function orderCertificate(
  client: acme.Client,
  names: readonly string[],
  responder: ChallengeResponder,
  replaces: string | undefined,
): Promise<Issued> {
  const order = await client.createOrder({
    identifiers: names.map((value) => ({ type: 'dns', value })),
    ...(replaces ? { replaces } : {}),
  } as Parameters<acme.Client['createOrder']>[0])
  for (const authz of await client.getAuthorizations(order)) {
    // An authorization the account already holds (a renewal soon after) needs no challenge.
    if (authz.status === 'valid') continue
    const challenge = authz.challenges.find((c) => c.type === responder.type)
    if (!challenge) {
      const offered = authz.challenges.map((c) => c.type).join(', ')
      throw new Error(`the CA offers no ${responder.type} challenge for ${authz.identifier.value} (it offers ${offered})`)
    }
    const keyAuthorization = await client.getChallengeKeyAuthorization(challenge)
    await responder.present(authz.identifier.value, challenge.token, keyAuthorization)
    try {
      await client.completeChallenge(challenge)
      await client.waitForValidStatus(challenge)
    } finally {
      await responder.remove(authz.identifier.value, challenge.token)
    }
  }
  const [key, csr] = await acme.crypto.createCsr({ commonName: names[0] as string, altNames: [...names] }, await acme.crypto.createPrivateEcdsaKey())
  const finalized = await client.finalizeOrder(order, csr)
  const certPem = await client.getCertificate(finalized)
  return { certPem, keyPem: key.toString() }
}

/**
 * A GET of the CA's JSON (the directory, renewalInfo) on node's own client: acme-client's axios
 * turns a refused or reset connection into a TypeError once its retries are spent, and
 * "connect ECONNREFUSED 127.0.0.1:14000" is what an operator needs to read.
 */
export function getJson(url: string, ca: Buffer | undefined): Promise<{ body: unknown; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...(ca ? { ca } : {}), agent: false, timeout: 30_000 }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        if (text.length < 1_000_000) text += c
      })
      res.on('end', () => {
        if ((res.statusCode ?? 0) >= 400) return reject(new Error(`GET ${url}: HTTP ${res.statusCode}`))
        try {
          resolve({ body: JSON.parse(text) as unknown, retryAfter: res.headers['retry-after'] })
        } catch {
          reject(new Error(`GET ${url}: not JSON`))
        }
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in 30 s`)))
    req.on('error', (err) => reject(new Error(`cannot reach the CA: ${err.message}`)))
  })
}

/**
 * RFC 9773 §4.2: GET renewalInfo/CertID, unauthenticated. Undefined when the CA has no
 * `renewalInfo` in its directory (then renewal goes by the certificate's own dates).
 */
export async function fetchRenewalInfo(directory: unknown, certId: string, ca: Buffer | undefined): Promise<RenewalInfo | undefined> {
  const base = (directory as { renewalInfo?: unknown }).renewalInfo
  if (typeof base !== 'string') return undefined
  const res = await getJson(`${base.replace(/\/$/, '')}/${certId}`, ca)
  const w = (res.body as { suggestedWindow?: { start?: string; end?: string } }).suggestedWindow
  const start = new Date(w?.start ?? Number.NaN)
  const end = new Date(w?.end ?? Number.NaN)
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end < start) throw new Error('renewalInfo: no valid suggestedWindow')
  const retry = Number(res.retryAfter)
  return { start, end, retryAfterMs: Number.isFinite(retry) && retry > 0 ? retry * 1000 : undefined }
}
