import { open } from 'node:fs/promises'
import { Readable } from 'node:stream'
import type { ZlibOptions } from 'node:zlib'
import { formatResponse, type Http1Request, httpDateNow } from '@edgestack/common'
import mime from 'mime-types'
import type { LocationConf } from './config/model.js'
import type { FileCache, FileInfo } from './file-cache.js'
import { parseHttpTime } from './http-date.js'
import { type ByteRange, parseRange } from './ranges.js'
import type { RequestState } from './request-state.js'
import { statusLineReason } from './error-page.js'
import { gzipHeaders, gzipRatio, gzipStream } from './gzip-filter.js'
import { baseHeaders, finishHeaders, sendBuiltin, sendWhole, writeBody } from './respond.js'
import { isStatic } from './variables.js'
import { recodesLength } from './charset-filter.js'
import { chunksOf, ssiApplies, ssiHeaders, ssiStream, ssiWhole } from './ssi-filter.js'

let boundary = 0
/** Largest body kept formatted with its head, ready for one write. */
const READY_MAX_BYTES = 64 * 1024
/** Request fields that can make a GET of a file anything but a plain 200. */
const CONDITIONAL = new Set(['if-modified-since', 'if-none-match', 'if-match', 'if-unmodified-since', 'range'])

/** `"<mtime hex>-<size hex>"`, as ngx_http_set_etag writes it. */
export function etagOf(info: FileInfo): string {
  return `"${Math.floor(info.mtimeMs / 1000).toString(16)}-${info.size.toString(16)}"`
}

/** The type by the URI's extension (r->exten, lower-cased), from `types`, or mime-types when the config has none. */
export function contentTypeFor(uri: string, conf: LocationConf): string {
  const slash = uri.lastIndexOf('/')
  const dot = uri.lastIndexOf('.')
  if (dot > slash && dot < uri.length - 1) {
    const ext = uri.slice(dot + 1).toLowerCase()
    if (conf.types) return conf.types.get(ext) ?? conf.defaultType
    const t = mime.lookup(ext)
    if (t) return t
  }
  return conf.defaultType
}

/**
 * The static module plus the not-modified and range filters for one regular file. Small files
 * come from memory in one write; large ones are streamed from an open descriptor with
 * backpressure (the response pauses the read when the socket's buffer is full).
 */
export async function sendFile(st: RequestState, path: string, info: FileInfo, cache: FileCache, encoding?: string): Promise<void> {
  st.lastModifiedSec = Math.floor(info.mtimeMs / 1000)
  if (sendReady(st, info, encoding)) return
  const { req, res, conf } = st
  const mtime = Math.floor(info.mtimeMs / 1000)
  const lastModified = lastModifiedOf(info)
  const etag = conf.etag ? etagOf(info) : undefined
  const type = contentTypeFor(st.uri, conf)
  // An error_page target is sent whole with the error's status: no ranges, no 304.
  const ok = st.errorStatus ?? 200
  if (ok !== 200) {
    // nginx drops Last-Modified from a page sent for an error status.
    const headers = [...baseHeaders(), 'Content-Type', type]
    if (etag) headers.push('ETag', etag)
    finishHeaders(st, ok, headers)
    if (ssiApplies(st, headers, info.size)) return sendSsiFile(st, path, ok, headers, cache, info)
    const body = await cache.body(path, info)
    if (body) {
      sendWhole(st, ok, headers, body, statusLineReason(ok))
      return
    }
    headers.push('Content-Length', String(info.size))
    return stream(st, path, headers, [{ start: 0, end: info.size }], ok, gzipHeaders(st, ok, headers, info.size))
  }

  // Neither preconditions nor ranges apply to a subrequest (r != r->main): its whole body is included.
  if (st.isSubrequest) {
    const headers = [...baseHeaders(), 'Content-Type', type]
    if (ssiApplies(st, headers, info.size)) return sendSsiFile(st, path, 200, headers, cache, info)
    const body = await cache.body(path, info)
    if (body) return res.send(200, headers, body)
    headers.push('Content-Length', String(info.size))
    return stream(st, path, headers, [{ start: 0, end: info.size }], 200)
  }

  // ngx_http_not_modified_filter: preconditions first (412), then 304 when every validator agrees.
  // An unparsable If-Unmodified-Since fails (nginx compares its -1 with the mtime), although
  // RFC 9110 §13.1.4 says to ignore it: the client gets what nginx would give it.
  const ius = req.header('if-unmodified-since')
  if (ius !== undefined && parseHttpTime(ius) < mtime) return sendBuiltin(st, 412)
  const ifMatch = req.header('if-match')
  if (ifMatch !== undefined && !matchEtag(ifMatch, etag, false)) return sendBuiltin(st, 412)
  const ims = req.header('if-modified-since')
  const inm = req.header('if-none-match')
  if ((ims !== undefined && conf.ifModifiedSince !== 'off') || inm !== undefined) {
    let notModified = true
    if (ims !== undefined && conf.ifModifiedSince !== 'off') {
      const t = parseHttpTime(ims)
      notModified = t === mtime || (conf.ifModifiedSince === 'before' && t > mtime)
    }
    if (notModified && inm !== undefined) notModified = matchEtag(inm, etag, true)
    if (notModified) {
      const h = [...baseHeaders(), 'Last-Modified', lastModified]
      if (etag) h.push('ETag', etag)
      res.send(304, finishHeaders(st, 304, h))
      return
    }
  }

  const headers = [...baseHeaders(), 'Content-Type', type]
  const common = ['Last-Modified', lastModified]
  if (etag) common.push('ETag', etag)
  if (encoding) common.push('Content-Encoding', encoding)

  // The SSI filter comes before the range filter, which then finds no length and serves the whole.
  if (conf.ssi.on && !encoding) {
    const h = finishHeaders(st, 200, [...headers, ...common])
    if (ssiApplies(st, h, info.size)) return sendSsiFile(st, path, 200, h, cache, info)
  }

  // The gzip filter runs before the range filter: a compressed answer is never ranged.
  if (conf.gzip.on && !encoding) {
    const h = okHeaders(st, [...headers], common, encoding)
    const options = gzipHeaders(st, 200, h, info.size)
    if (options !== undefined) {
      if (req.method === 'HEAD') return writeBody(st, 200, h, undefined, options)
      const body = await cache.body(path, info)
      if (!body) return stream(st, path, h, [{ start: 0, end: info.size }], 200, options)
      const gz = await cache.gzipped(info, body, options)
      st.gzipRatio = gzipRatio(body.length, gz.length)
      res.writeHead(200, h)
      res.end(gz)
      return
    }
  }

  let ranges: ByteRange[] | 'unsatisfiable' | undefined
  const range = req.header('range')
  if (range !== undefined && !encoding && !recodesLength(st, type) && ifRangeHolds(req.header('if-range'), etag, mtime)) ranges = parseRange(range, info.size)
  if (ranges === 'unsatisfiable') {
    return sendBuiltin(st, 416, ['Content-Range', `bytes */${info.size}`], 200)
  }
  if (ranges === undefined) {
    okHeaders(st, headers, common, encoding)
    const body = req.method === 'HEAD' ? undefined : await cache.body(path, info)
    if (body || req.method === 'HEAD' || info.size === 0) {
      if (req.method === 'HEAD') {
        headers.push('Content-Length', String(info.size))
        res.writeHead(200, headers)
        res.end()
      } else res.send(200, headers, body ?? Buffer.alloc(0))
      return
    }
    headers.push('Content-Length', String(info.size))
    return stream(st, path, headers, [{ start: 0, end: info.size }], 200)
  }
  if (ranges.length === 1) {
    const r = ranges[0] as ByteRange
    headers.push(...common, 'Content-Range', `bytes ${r.start}-${r.end - 1}/${info.size}`, 'Content-Length', String(r.end - r.start))
    finishHeaders(st, 206, headers)
    return stream(st, path, headers, ranges, 206)
  }
  // multipart/byteranges (RFC 9110 §14.6) with nginx's 20-digit counter as the boundary.
  const b = String(++boundary).padStart(20, '0')
  const parts: Buffer[] = []
  let length = 0
  for (const r of ranges) {
    const p = Buffer.from(`\r\n--${b}\r\nContent-Type: ${type}\r\nContent-Range: bytes ${r.start}-${r.end - 1}/${info.size}\r\n\r\n`)
    parts.push(p)
    length += p.length + (r.end - r.start)
  }
  const tail = Buffer.from(`\r\n--${b}--\r\n`)
  length += tail.length
  headers[headers.indexOf('Content-Type') + 1] = `multipart/byteranges; boundary=${b}`
  headers.push(...common, 'Content-Length', String(length))
  finishHeaders(st, 206, headers)
  return stream(st, path, headers, ranges, 206, undefined, parts, tail)
}

/** The fields of a whole 200: the same list for a ready answer and a formatted one. */
function okHeaders(st: RequestState, headers: string[], common: string[], encoding: string | undefined): string[] {
  headers.push(...common)
  // gzip_static answers are not ranged by nginx, and say so by omission.
  if (!encoding) headers.push('Accept-Ranges', 'bytes')
  return finishHeaders(st, 200, headers)
}

/**
 * The hot path of a small file: a plain GET (no validators, no Range) of a body in memory
 * is answered with the bytes formatted for the previous such request, in one write, while
 * the key (location, type, Date second, Connection field) is the same; otherwise they are
 * formatted afresh with the same fields as the general path. add_header values with
 * variables and a relative `expires` may differ per request, so such locations always take
 * the general path.
 */
function sendReady(st: RequestState, info: FileInfo, encoding: string | undefined): boolean {
  const { req, res, conf } = st
  const body = info.body
  if (
    body === undefined ||
    body.length > READY_MAX_BYTES ||
    encoding !== undefined ||
    // A ready answer carries no Vary and is never compressed or SSI-processed.
    conf.gzip.on ||
    (conf.ssi.on && ssiApplies(st, ['Content-Type', contentTypeFor(st.uri, conf)], body.length)) ||
    st.isSubrequest ||
    st.gzipVary ||
    st.errorStatus !== undefined ||
    req.method !== 'GET' ||
    !plainRequest(req) ||
    // `expires 1h` is counted from the request's own clock reading: it stays on the general path.
    (conf.expires !== undefined && typeof conf.expires !== 'string') ||
    !conf.addHeaders.every((h) => isStatic(h.value)) ||
    // A trailer makes the answer chunked: not the ready Content-Length one.
    conf.addTrailers.length > 0 ||
    // A body recoded, or a charset read from a variable: per answer.
    conf.sourceCharset !== undefined ||
    conf.charset?.startsWith('$') === true
  ) {
    return false
  }
  const type = contentTypeFor(st.uri, conf)
  const date = httpDateNow()
  const connection = res.connectionField()
  let r = info.ready
  if (r === undefined || r.conf !== conf || r.type !== type || r.date !== date || r.connection !== connection) {
    const common = ['Last-Modified', lastModifiedOf(info)]
    if (conf.etag) common.push('ETag', etagOf(info))
    const headers = okHeaders(st, [...baseHeaders(), 'Content-Type', type], common, undefined)
    const wire = formatResponse(200, headers, body, connection)
    r = { conf, type, date, connection, wire }
    info.ready = r
    // The body now lives inside the ready answer: one copy in memory, not two.
    info.body = wire.subarray(wire.length - body.length)
  }
  res.sendFormatted(200, r.wire, body.length)
  return true
}

/** Last-Modified as nginx writes it: the file's mtime in whole seconds. */
function lastModifiedOf(info: FileInfo): string {
  return new Date(Math.floor(info.mtimeMs / 1000) * 1000).toUTCString()
}

function plainRequest(req: Http1Request): boolean {
  const h = req.headers
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i] as string
    const c = name.charCodeAt(0) | 0x20
    if ((c === 0x69 || c === 0x72) && CONDITIONAL.has(name.toLowerCase())) return false
  }
  return true
}

/** ngx_http_range_header_filter: an entity-tag when it ends in `"`, else a date compared as a time. */
function ifRangeHolds(ifRange: string | undefined, etag: string | undefined, mtime: number): boolean {
  if (ifRange === undefined) return true
  if (ifRange.length >= 2 && ifRange.endsWith('"')) return etag !== undefined && ifRange === etag
  return parseHttpTime(ifRange) === mtime
}

/** If-None-Match (weak comparison) / If-Match (strong), with `*` and lists. */
function matchEtag(header: string, etag: string | undefined, weak: boolean): boolean {
  if (header.trim() === '*') return true
  if (etag === undefined) return false
  for (let tag of header.split(',')) {
    tag = tag.trim()
    if (weak && tag.startsWith('W/')) tag = tag.slice(2)
    if (tag === etag) return true
  }
  return false
}

/**
 * A file through the SSI filter (then gzip), read in 32k chunks as nginx's output_buffers read
 * it; `headers` are the answer's as finishHeaders left them.
 */
async function sendSsiFile(st: RequestState, path: string, status: number, headers: string[], cache: FileCache, info: FileInfo): Promise<void> {
  const { res, req } = st
  ssiHeaders(st, headers)
  const gzip = gzipHeaders(st, status, headers, undefined)
  // A file the cache holds is read from memory, as the plain path reads it.
  const body = req.method === 'HEAD' ? undefined : await cache.body(path, info)
  if (body !== undefined) {
    res.writeHead(status, headers, statusLineReason(status))
    if (!gzip) return ssiWhole(st, body)
    await res.pipeFrom(gzipStream(st, ssiStream(st, Readable.from(chunksOf(body))), gzip))
    return
  }
  const fh = await open(path, 'r')
  try {
    res.writeHead(status, headers, statusLineReason(status))
    if (req.method === 'HEAD') {
      res.end()
      return
    }
    let out: Readable = ssiStream(st, fh.createReadStream({ autoClose: false, highWaterMark: 32 * 1024 }))
    if (gzip) out = gzipStream(st, out, gzip)
    await res.pipeFrom(out)
  } finally {
    await fh.close().catch(() => {})
  }
}

async function stream(
  st: RequestState,
  path: string,
  headers: string[],
  ranges: ByteRange[],
  status: number,
  gzip?: ZlibOptions,
  parts?: Buffer[],
  tail?: Buffer,
): Promise<void> {
  const { res, req } = st
  const fh = await open(path, 'r')
  try {
    res.writeHead(status, headers, statusLineReason(status))
    if (req.method === 'HEAD') {
      res.end()
      return
    }
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i] as ByteRange
      if (parts) res.write(parts[i] as Buffer)
      if (r.end > r.start) {
        const rs = fh.createReadStream({ start: r.start, end: r.end - 1, autoClose: false, highWaterMark: 64 * 1024 })
        await pump(st, gzip ? gzipStream(st, rs, gzip) : rs)
        if (res.finished) return
      }
    }
    if (tail) res.write(tail)
    res.end()
  } finally {
    await fh.close().catch(() => {})
  }
}

/** Copies one read stream into the response, pausing while the socket is full. */
function pump(st: RequestState, rs: NodeJS.ReadableStream & { destroy(): void }): Promise<void> {
  const { res, req } = st
  return new Promise((resolve, reject) => {
    const onDrain = () => rs.resume()
    const onClose = () => {
      cleanup()
      rs.destroy()
      resolve()
    }
    const cleanup = () => {
      req.socket.off('drain', onDrain)
      res.off('close', onClose)
    }
    rs.on('data', (c: Buffer) => {
      if (!res.write(c)) rs.pause()
    })
    rs.once('end', () => {
      cleanup()
      resolve()
    })
    rs.once('error', (err) => {
      cleanup()
      reject(err)
    })
    req.socket.on('drain', onDrain)
    res.once('close', onClose)
  })
}
