import type tls from 'node:tls'
import { type Endpoint, encodeProxyV2 } from '@edgestack/common'

// TLV types of the PROXY protocol v2 (HAProxy's proxy-protocol.txt §2.2).
const PP2_TYPE_ALPN = 0x01
const PP2_TYPE_AUTHORITY = 0x02
const PP2_TYPE_SSL = 0x20
const PP2_SUBTYPE_SSL_VERSION = 0x21
const PP2_SUBTYPE_SSL_CIPHER = 0x23
const PP2_CLIENT_SSL = 0x01
const PP2_CLIENT_CERT_CONN = 0x02
const PP2_CLIENT_CERT_SESS = 0x04

export interface TlsFacts {
  /** The ALPN protocol chosen, if any. */
  alpn: string | false | null | undefined
  /** The SNI name the client sent, if any. */
  serverName: string | false | null | undefined
  /** `TLSv1.3`, as OpenSSL's SSL_get_version names it. */
  version: string | null
  /** OpenSSL's name of the cipher (`TLS_AES_256_GCM_SHA384`, `ECDHE-RSA-AES128-GCM-SHA256`). */
  cipher: string | undefined
  /** The client sent a certificate on this connection. */
  clientCert: boolean
  /** ... and it verified. */
  clientCertVerified: boolean
}

/**
 * The PROXY v2 header as hitch 1.7's write-proxy-v2 writes it (bytes compared with Debian's
 * hitch in test/proxy-v2-header.test.ts): the addresses, then PP2_TYPE_ALPN when a protocol
 * was negotiated, PP2_TYPE_AUTHORITY when the client sent SNI, and with proxy-tlv (hitch's
 * default) PP2_TYPE_SSL: the client bits (SSL, and CERT_CONN|CERT_SESS with a certificate),
 * the verify result (0 for a verified certificate, 1 when there is none), and the
 * SSL_VERSION and SSL_CIPHER sub-TLVs, in that order. varnishd reads the ALPN TLV to speak h2.
 */
export function encodeHitchProxyV2(source: Endpoint, destination: Endpoint, facts: TlsFacts, withSsl: boolean): Buffer {
  const tlvs: Buffer[] = []
  if (facts.alpn) tlvs.push(tlv(PP2_TYPE_ALPN, Buffer.from(facts.alpn, 'latin1')))
  if (facts.serverName) tlvs.push(tlv(PP2_TYPE_AUTHORITY, Buffer.from(facts.serverName, 'latin1')))
  if (withSsl) {
    const head = Buffer.alloc(5)
    head[0] = PP2_CLIENT_SSL | (facts.clientCert ? PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS : 0)
    head.writeUInt32BE(facts.clientCert && facts.clientCertVerified ? 0 : 1, 1)
    const subs: Buffer[] = [head]
    if (facts.version) subs.push(tlv(PP2_SUBTYPE_SSL_VERSION, Buffer.from(facts.version, 'latin1')))
    if (facts.cipher) subs.push(tlv(PP2_SUBTYPE_SSL_CIPHER, Buffer.from(facts.cipher, 'latin1')))
    tlvs.push(tlv(PP2_TYPE_SSL, Buffer.concat(subs)))
  }
  const base = encodeProxyV2(source, destination)
  const out = Buffer.concat([base, ...tlvs])
  out.writeUInt16BE(out.length - 16, 14)
  return out
}

/** What the header says about a finished handshake. */
export function tlsFacts(client: tls.TLSSocket): TlsFacts {
  const cert = client.getPeerX509Certificate()
  return {
    alpn: client.alpnProtocol,
    serverName: client.servername,
    version: client.getProtocol(),
    cipher: client.getCipher()?.name,
    clientCert: cert !== undefined,
    clientCertVerified: cert !== undefined && client.authorized,
  }
}

function tlv(type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(3)
  head[0] = type
  head.writeUInt16BE(value.length, 1)
  return Buffer.concat([head, value])
}
