import { once } from 'node:events'
import { mkdir, rm } from 'node:fs/promises'
import http from 'node:http'
import { join } from 'node:path'
import tls from 'node:tls'
import { formatAddress, type HostPort, StartupError } from '@edgestack/common'
import acme from 'acme-client'
import { writeFileAtomic } from './atomic-files.js'

/** A way of answering one kind of challenge while an order is validated. */
export interface ChallengeResponder {
  readonly type: 'http-01' | 'tls-alpn-01'
  present(identifier: string, token: string, keyAuthorization: string): Promise<void>
  remove(identifier: string, token: string): Promise<void>
  close(): Promise<void>
}

/** RFC 8555 §8.3: the path the CA fetches over plain HTTP on port 80. */
export const HTTP01_PREFIX = '/.well-known/acme-challenge/'
/** RFC 8555 §8.3: a token is base64url. Anything else in a URL is never one we wrote. */
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/

/**
 * `--http-01-root DIR`: the key authorization written to DIR/.well-known/acme-challenge/TOKEN,
 * for a web server already on port 80 to serve: static-server's or nginx's `root` (certbot's
 * webroot). Through the chain the router must send that path to it (see the README's VCL).
 */
export function webrootResponder(root: string): ChallengeResponder {
  const dir = join(root, HTTP01_PREFIX)
  return {
    type: 'http-01',
    async present(_id, token, keyAuthorization) {
      if (!TOKEN.test(token)) throw new Error(`the CA sent a token that is not base64url: ${JSON.stringify(token)}`)
      await mkdir(dir, { recursive: true })
      await writeFileAtomic(join(dir, token), keyAuthorization)
    },
    async remove(_id, token) {
      if (TOKEN.test(token)) await rm(join(dir, token), { force: true })
    },
    async close() {},
  }
}

/**
 * `--http-01-listen ADDR`: a responder of our own, for when nothing else holds port 80 (or a
 * proxy in front forwards /.well-known/acme-challenge/ to it). It answers the tokens of the
 * order in progress and 404 to everything else.
 */
export async function listeningHttpResponder(address: HostPort): Promise<ChallengeResponder> {
  const tokens = new Map<string, string>()
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?', 1)[0] as string
    const answer = path.startsWith(HTTP01_PREFIX) ? tokens.get(path.slice(HTTP01_PREFIX.length)) : undefined
    res.shouldKeepAlive = false
    res.writeHead(answer === undefined ? 404 : 200, { 'Content-Type': 'text/plain' })
    res.end(answer ?? 'not found\n')
  })
  await bind(server, address, '--http-01-listen')
  return {
    type: 'http-01',
    async present(_id, token, keyAuthorization) {
      tokens.set(token, keyAuthorization)
    },
    async remove(_id, token) {
      tokens.delete(token)
    },
    close: () => closeServer(server),
  }
}

/**
 * `--tls-alpn-01-listen ADDR` (RFC 8737): a TLS responder that, to a client asking for the
 * `acme-tls/1` protocol with the identifier as SNI, shows a self-signed certificate carrying
 * the key authorization's digest. It refuses every other handshake, so it must have port 443
 * to itself while an order is validated (first issuance, before the terminator starts).
 */
export async function tlsAlpnResponder(address: HostPort): Promise<ChallengeResponder> {
  const contexts = new Map<string, tls.SecureContext>()
  const server = tls.createServer({
    ALPNProtocols: ['acme-tls/1'],
    SNICallback: (name, cb) => {
      const ctx = contexts.get(name.toLowerCase())
      cb(ctx ? null : new Error(`no challenge for ${name}`), ctx)
    },
  })
  server.on('tlsClientError', () => undefined)
  server.on('secureConnection', (s) => s.end())
  await bind(server, address, '--tls-alpn-01-listen')
  return {
    type: 'tls-alpn-01',
    async present(identifier, _token, keyAuthorization) {
      const authz = { identifier: { type: 'dns', value: identifier } } as Parameters<typeof acme.crypto.createAlpnCertificate>[0]
      const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization)
      contexts.set(identifier.toLowerCase(), tls.createSecureContext({ key, cert }))
    },
    async remove(identifier) {
      contexts.delete(identifier.toLowerCase())
    },
    close: () => closeServer(server),
  }
}

async function bind(server: http.Server | tls.Server, address: HostPort, flag: string): Promise<void> {
  server.listen(address.port, address.host)
  try {
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))])
  } catch (err) {
    throw new StartupError(`${flag} ${formatAddress(address)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

function closeServer(server: http.Server | tls.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()))
}
