import type { Socket } from 'node:net'
import type { Http1Request, Http1Response, PeerAddresses } from '@edgestack/common'

/**
 * `Upgrade: h2c` (RFC 7540 §3.2, dropped by RFC 9113 but still what varnishd 7.1 does with
 * +http2): what varnishd's http1 fsm looks at, as probed on 7.1.1. The field is matched
 * without regard to case; a request with a body stays on HTTP/1.1; HTTP/1.0 is upgraded too.
 */
export function wantsH2c(req: Http1Request): boolean {
  if (req.hasBody) return false
  const v = req.header('upgrade')
  return v !== undefined && v.trim().toLowerCase() === 'h2c'
}

const SWITCHING = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n', 'latin1')
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')
/** RFC 9113 §4.2: every peer takes frames of 16384 bytes before any SETTINGS says more. */
const DEFAULT_MAX_FRAME = 16384
/** Hop-by-hop fields and the upgrade's own (RFC 7540 §3.2.1) stay out of stream 1. */
const DROPPED = new Set(['connection', 'upgrade', 'http2-settings', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te'])
const BASE64URL = /^[A-Za-z0-9_-]*$/

/**
 * Takes the connection over for HTTP/2: 101, then the client's preface and first SETTINGS,
 * behind which the upgraded request goes to node:http2 as stream 1's HEADERS (literal fields
 * without indexing, so the client's HPACK state is not touched). Node's http2 has no h2c
 * upgrade (nghttp2_session_upgrade2 is not exposed), hence this. `serve` then gets the
 * socket and the bytes to read first. A missing or malformed HTTP2-Settings closes the
 * connection without an answer, as varnishd does.
 */
export function upgradeToH2(req: Http1Request, res: Http1Response, serve: (socket: Socket, bytes: Buffer, peer: PeerAddresses) => void): void {
  const settings = req.headerValues('http2-settings')
  const { socket, rest } = res.hijack()
  socket.on('error', () => {})
  if (settings.length !== 1 || !validSettings(settings[0] as string)) {
    socket.destroy()
    return
  }
  const peer: PeerAddresses = { remoteAddress: req.remoteAddress, remotePort: req.remotePort, localAddress: req.localAddress, localPort: req.localPort, connection: req.viaProxy }
  const stream1 = headersFrames(req)
  socket.write(SWITCHING)
  let got = rest
  // The client's preface may take a while: the idle timeout of the HTTP/1 side no longer
  // watches this socket, so a timer does until the preface is read.
  const timer = setTimeout(() => socket.destroy(), 10_000)
  timer.unref()
  const onData = (chunk: Buffer) => {
    got = got.length === 0 ? chunk : Buffer.concat([got, chunk])
    take()
  }
  const take = () => {
    const n = Math.min(got.length, PREFACE.length)
    if (got.compare(PREFACE, 0, n, 0, n) !== 0) return fail()
    // The preface, then the client's SETTINGS frame whole (9 bytes of header and its payload).
    if (got.length < PREFACE.length + 9) return
    const length = got.readUIntBE(PREFACE.length, 3)
    if (got[PREFACE.length + 3] !== 0x04 || length > DEFAULT_MAX_FRAME) return fail()
    const end = PREFACE.length + 9 + length
    if (got.length < end) return
    cleanup()
    serve(socket, Buffer.concat([got.subarray(0, end), stream1, got.subarray(end)]), peer)
  }
  const fail = () => {
    cleanup()
    socket.destroy()
  }
  const cleanup = () => {
    clearTimeout(timer)
    socket.off('data', onData)
    socket.off('end', fail)
    socket.pause()
  }
  socket.on('data', onData)
  socket.on('end', fail)
  if (got.length > 0) take()
  socket.resume()
}

/** HTTP2-Settings: base64url of whole 6-byte settings (RFC 7540 §3.2.1); "" is none. */
function validSettings(value: string): boolean {
  const v = value.trim()
  if (!BASE64URL.test(v) || v.length % 4 === 1) return false
  return Buffer.from(v, 'base64url').length % 6 === 0
}

/** Stream 1's HEADERS (END_STREAM), and CONTINUATION frames past 16384 bytes. */
function headersFrames(req: Http1Request): Buffer {
  const parts: Buffer[] = [field(':method', req.method), field(':scheme', 'http'), field(':path', req.target)]
  const h = req.headers
  for (let i = 0; i < h.length; i += 2) {
    const name = (h[i] as string).toLowerCase()
    if (!DROPPED.has(name)) parts.push(field(name, h[i + 1] as string))
  }
  const block = Buffer.concat(parts)
  const frames: Buffer[] = []
  for (let at = 0; at === 0 || at < block.length; at += DEFAULT_MAX_FRAME) {
    const piece = block.subarray(at, at + DEFAULT_MAX_FRAME)
    const last = at + DEFAULT_MAX_FRAME >= block.length
    const head = Buffer.alloc(9)
    head.writeUIntBE(piece.length, 0, 3)
    head[3] = at === 0 ? 0x01 : 0x09 // HEADERS, CONTINUATION
    head[4] = (at === 0 ? 0x01 : 0) | (last ? 0x04 : 0) // END_STREAM on HEADERS, END_HEADERS on the last
    head.writeUInt32BE(1, 5)
    frames.push(head, piece)
  }
  return Buffer.concat(frames)
}

/** RFC 7541 §6.2.2: a literal field without indexing, new name, no Huffman. */
function field(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'latin1')
  const v = Buffer.from(value, 'latin1')
  return Buffer.concat([Buffer.from([0]), integer(n.length), n, integer(v.length), v])
}

/** RFC 7541 §5.1 with a 7-bit prefix (the H bit clear). */
function integer(n: number): Buffer {
  if (n < 127) return Buffer.from([n])
  const out = [127]
  let rest = n - 127
  while (rest >= 128) {
    out.push((rest & 0x7f) | 0x80)
    rest = Math.floor(rest / 128)
  }
  out.push(rest)
  return Buffer.from(out)
}
