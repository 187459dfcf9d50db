import net from 'node:net'
import { type Readable, Transform } from 'node:stream'
import type { Dispatcher } from 'undici'
import { reason } from './error-page.js'
import type { RequestState } from './request-state.js'
import { baseHeaders, finishHeaders } from './respond.js'
import type { Peer, Upstream } from './upstream.js'
import { escapeUri } from './uri.js'
import { expand } from './variables.js'

/** Request fields nginx never forwards as received (ngx_http_proxy_headers); proxy_set_header may set them. */
const NOT_FORWARDED = new Set(['host', 'connection', 'keep-alive', 'te', 'expect', 'upgrade', 'transfer-encoding', 'content-length', 'proxy-connection', 'trailer'])
/** Response fields nginx drops or replaces (proxy_hide_header defaults plus hop-by-hop). */
const NOT_RETURNED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'server', 'x-pad', 'upgrade', 'proxy-connection', 'trailer'])

/** The outcome the phases turn into an error page, as nginx's upstream module does. */
export type ProxyResult = undefined | 413 | 502 | 504

/**
 * proxy_pass: the URI rules of ngx_http_proxy_module, nginx's default request fields
 * (Host $proxy_host, no Connection/Upgrade/TE/Expect unless set), next-upstream on error and
 * timeout before anything was sent to the client, and websocket upgrades tunnelled when the
 * config sets `Upgrade`, as the article's idiom does.
 */
export async function proxy(st: RequestState, up: Upstream): Promise<ProxyResult> {
  const pp = st.conf.proxyPass
  if (!pp) return 502
  st.proxyHost = pp.host
  const path = upstreamPath(st)
  const setNames = new Set<string>()
  const headers: string[] = []
  let upgradeValue = ''
  let hostSet = false
  for (const h of st.conf.proxySetHeaders) {
    const lower = h.name.toLowerCase()
    setNames.add(lower)
    const v = expand(h.value, st)
    if (lower === 'upgrade') upgradeValue = v
    if (lower === 'host') hostSet = true
    if (v === '' || lower === 'connection' || lower === 'upgrade' || lower === 'keep-alive') continue
    headers.push(h.name, v)
  }
  if (!hostSet) headers.unshift('Host', pp.host)
  const req = st.req
  for (let i = 0; i < req.headers.length; i += 2) {
    const lower = (req.headers[i] as string).toLowerCase()
    if (NOT_FORWARDED.has(lower) || setNames.has(lower)) continue
    headers.push(req.headers[i] as string, req.headers[i + 1] as string)
  }
  if (req.upgrade && upgradeValue !== '' && st.conf.proxyHttpVersion === '1.1') {
    return tunnel(st, up, path, headers, upgradeValue)
  }
  if (req.contentLength !== undefined && !req.chunked) headers.push('Content-Length', String(req.contentLength))

  // nginx reads the body for proxy_pass (ngx_http_test_expect), body or not: a client waiting on
  // Expect gets its 100 Continue first.
  if (req.version === '1.1' && req.header('expect')?.toLowerCase() === '100-continue') st.res.writeContinue()

  let tooLarge = false
  let body: Readable | null = req.hasBody ? req.body : null
  const limit = st.conf.clientMaxBodySize
  if (body && req.chunked && limit > 0) {
    // A chunked body has no length to check up front: count it as it streams (nginx: 413).
    let seen = 0
    body = body.pipe(
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          seen += chunk.length
          if (seen > limit) {
            tooLarge = true
            cb(new Error('client intended to send too large chunked body'))
          } else cb(null, chunk)
        },
      }),
    )
  }
  const tried = new Set<Peer>()
  const next = st.conf.proxyNextUpstream
  let last: ProxyResult = 502
  for (;;) {
    const peer = up.pick(tried)
    if (!peer) return last
    tried.add(peer)
    st.upstreamAddr = peer.address
    let r: Dispatcher.ResponseData
    try {
      r = await peer.pool.request({
        method: req.method,
        path,
        headers,
        body,
        headersTimeout: st.conf.proxyReadTimeoutMs,
        bodyTimeout: st.conf.proxyReadTimeoutMs,
      })
    } catch (err) {
      if (tooLarge) {
        st.req.keepAlive = false
        return 413
      }
      const code = (err as { code?: string }).code ?? ''
      const timeout = code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT'
      up.failed(peer)
      last = timeout ? 504 : 502
      // The body has been read into the failed attempt: it cannot be sent again.
      if (req.hasBody || next.has('off') || !next.has(timeout ? 'timeout' : 'error')) return last
      continue
    }
    up.succeeded(peer)
    if (next.has(`http_${r.statusCode}`) && !req.hasBody && up.pick(new Set([...tried])) !== undefined) {
      await r.body.dump().catch(() => {})
      last = r.statusCode === 504 ? 504 : 502
      continue
    }
    const out = baseHeaders()
    for (const [name, value] of Object.entries(r.headers)) {
      if (value === undefined || NOT_RETURNED.has(name)) continue
      for (const v of Array.isArray(value) ? value : [value]) out.push(name, v)
    }
    const status = st.errorStatus ?? r.statusCode
    finishHeaders(st, status, out)
    st.res.writeHead(status, out, reason(status))
    try {
      await st.res.pipeFrom(r.body)
    } catch {
      // The upstream broke off mid-body: nginx closes the client connection too.
      st.res.destroy()
    }
    return undefined
  }
}

function upstreamPath(st: RequestState): string {
  const pp = st.conf.proxyPass
  const args = st.args ? `?${st.args}` : ''
  if (pp?.uri === undefined || st.rewriteBreak) {
    if (!st.uriChanged) {
      const t = st.req.target
      if (t.startsWith('/')) return t
    }
    return escapeUri(st.uri) + args
  }
  return pp.uri + escapeUri(st.uri.slice(pp.locationPrefix.length)) + args
}

/** Websocket (or any Upgrade) through the chosen peer: the head is written as nginx would, then bytes flow both ways. */
function tunnel(st: RequestState, up: Upstream, path: string, headers: string[], upgrade: string): Promise<ProxyResult> {
  const peer = up.pick(new Set())
  if (!peer) return Promise.resolve(502)
  st.upstreamAddr = peer.address
  let connection = 'upgrade'
  for (const h of st.conf.proxySetHeaders) if (h.name.toLowerCase() === 'connection') connection = expand(h.value, st)
  return new Promise((resolve) => {
    const s = peer.server
    const conn = net.connect({ host: s.host, port: s.port })
    const timer = setTimeout(() => conn.destroy(new Error('connect timeout')), st.conf.proxyConnectTimeoutMs)
    conn.once('error', () => {
      clearTimeout(timer)
      up.failed(peer)
      resolve(502)
    })
    conn.once('connect', () => {
      clearTimeout(timer)
      let head = `${st.req.method} ${path} HTTP/1.1\r\n`
      for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`
      head += `Upgrade: ${upgrade}\r\nConnection: ${connection}\r\n\r\n`
      const { socket, rest } = st.res.hijack()
      conn.removeAllListeners('error')
      conn.on('error', () => socket.destroy())
      socket.on('error', () => conn.destroy())
      conn.write(head, 'latin1')
      if (rest.length > 0) conn.write(rest)
      socket.pipe(conn)
      conn.pipe(socket)
      // Either side finishing ends the tunnel, as nginx finalizes an upgraded connection: our
      // client sockets are half-open capable, so without this a FIN would leave both ends open.
      socket.on('end', () => conn.end(() => conn.destroy()))
      conn.on('end', () => socket.end(() => socket.destroy()))
      conn.on('close', () => socket.destroy())
      socket.on('close', () => conn.destroy())
      resolve(undefined)
    })
  })
}
