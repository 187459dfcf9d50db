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
 * RFC 9773 §4.2: GET renewalInfo/CertID, unauthenticated. Undefined when the CA has no
 * `renewalInfo` in its directory (then renewal goes by the certificate's own dates).
 */
export async function fetchRenewalInfo(directoryUrl: string, certId: string): Promise<RenewalInfo | undefined> {
  const dir = (await acme.axios.get(directoryUrl)).data as { renewalInfo?: string }
  if (typeof dir.renewalInfo !== 'string') return undefined
  const res = await acme.axios.get(`${dir.renewalInfo.replace(/\/$/, '')}/${certId}`)
  const w = (res.data as { suggestedWindow?: { start?: string; end?: string } }).suggestedWindow
  const start = new Date(w?.start ?? Number.NaN)
  const end = new Date(w?.end ?? Number.NaN)
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end < start) throw new Error('renewalInfo: no valid suggestedWindow')
  const retry = Number(res.headers['retry-after'])
  return { start, end, retryAfterMs: Number.isFinite(retry) && retry > 0 ? retry * 1000 : undefined }
}
