import { clfNow, type PeerAddresses } from '@edgestack/common'
import type { ServerModel } from './config/model.js'
import { normalizeHost, selectServer, type VirtualHosts } from './server-select.js'
import { parseTarget } from './uri.js'
import type { VariableSource } from './variables.js'

/** RFC 9110 §5.1 token characters. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/**
 * A request the HTTP core refused before it reached a location, seen as nginx's log module
 * sees its 400s: `$request` is the request line as far as it was read (up to the first CR or
 * LF), `$request_method` / `$uri` / `$args` exist only when the request line was well formed,
 * and `$http_*` holds the fields read before the one that failed. Values are the bytes read
 * (latin1); the log's escaping makes them printable.
 */
export class RefusedRequest implements VariableSource {
  readonly server: ServerModel
  readonly #line: string
  readonly #method: string
  readonly #target: string
  readonly #version: string
  readonly #fields = new Map<string, string>()
  readonly #peer: PeerAddresses
  readonly #status: number
  readonly #sent: { bytes: number; body: number }

  constructor(head: Buffer, peer: PeerAddresses, status: number, sent: { bytes: number; body: number }, vhosts: VirtualHosts) {
    // realip never ran: the connection's own peer, whatever a PROXY header said.
    this.#peer = peer.connection ?? peer
    this.#status = status
    this.#sent = sent
    let end = head.indexOf('\r\n\r\n')
    const whole = end >= 0
    if (!whole) end = head.length
    const text = head.toString('latin1', 0, end)
    const lines = text.split(/\r\n|\n/)
    // A field line still being received (no line end yet) was not read; a request line was, as
    // far as it came ($request is read from the buffer up to a CR or LF).
    if (!whole && lines.length > 1) lines.pop()
    this.#line = (lines[0] ?? '').split('\r')[0] as string
    const m = /^([A-Z_-]+) ([^\x00-\x20\x7f]+) HTTP\/(\d\.\d)$/.exec(this.#line)
    this.#method = m?.[1] ?? ''
    this.#target = m?.[2] ?? ''
    this.#version = m?.[3] ?? ''
    if (m) {
      for (const l of lines.slice(1)) {
        const colon = l.indexOf(':')
        const name = l.slice(0, colon)
        const value = l.slice(colon + 1).trim()
        // The first field that cannot be read ends what nginx had read.
        if (colon <= 0 || !TOKEN.test(name) || /[\x00\r\n]/.test(value)) break
        const key = name.toLowerCase()
        if (!this.#fields.has(key)) this.#fields.set(key, value)
      }
    }
    const host = normalizeHost(this.#fields.get('host'))
    this.server = host === undefined ? vhosts.defaultServer : selectServer(vhosts, host).server
  }

  get(name: string): string {
    switch (name) {
      case 'request':
        return this.#line
      case 'request_method':
        return this.#method
      case 'request_uri':
        return this.#target
      case 'uri':
      case 'document_uri':
        return this.#target ? (parseTarget(this.#target, this.server.mergeSlashes)?.uri ?? '') : ''
      case 'args':
      case 'query_string':
        return this.#target ? (parseTarget(this.#target, this.server.mergeSlashes)?.args ?? '') : ''
      case 'server_protocol':
        return this.#version ? `HTTP/${this.#version}` : ''
      case 'status':
        return String(this.#status)
      case 'bytes_sent':
        return String(this.#sent.bytes)
      case 'body_bytes_sent':
        return String(this.#sent.body)
      case 'remote_addr':
        return this.#peer.remoteAddress
      case 'remote_port':
        return String(this.#peer.remotePort)
      case 'server_addr':
        return this.#peer.localAddress
      case 'server_port':
        return String(this.#peer.localPort)
      case 'server_name':
        return this.server.primaryName
      case 'host':
        return normalizeHost(this.#fields.get('host')) || this.server.primaryName
      case 'scheme':
        return 'http'
      case 'time_local':
        return clfNow()
      case 'time_iso8601':
        return new Date().toISOString().replace(/\.\d+Z$/, '+00:00')
      case 'msec':
        return (Date.now() / 1000).toFixed(3)
      case 'request_time':
        return '0.000'
    }
    if (name.startsWith('http_')) return this.#fields.get(name.slice(5).replaceAll('_', '-')) ?? ''
    return ''
  }
}
