import zlib from 'node:zlib'
import type { Http1Response } from '@edgestack/common'
import type { BodyListener } from '../cache-object.js'
import { weakenedEtag } from '../deliver.js'

/**
 * A gzip object to a client that does not take gzip (varnishd's gunzip VDP): the stored
 * bytes go through zlib on their way out, as they are read, with the client's backpressure
 * (zlib pauses while the socket is full). A stored body that does not inflate cuts the
 * response off, as varnishd's delivery does.
 */
export function gunzipInto(res: Http1Response, bufferBytes: number, start: () => void, failed: () => void): BodyListener {
  const gunzip = zlib.createGunzip({ chunkSize: bufferBytes })
  const resume = () => gunzip.resume()
  // The head waits for the first inflated bytes: a body that fails before any is varnishd's
  // 503 (the fetch failed before the delivery began), not a 200 cut off.
  let started = false
  const begin = () => {
    if (started) return
    started = true
    start()
  }
  gunzip.on('data', (c: Buffer) => {
    begin()
    if (!res.write(c)) {
      gunzip.pause()
      res.socket.once('drain', resume)
    }
  })
  gunzip.once('end', () => {
    begin()
    res.end()
  })
  gunzip.once('error', () => (started ? res.destroy() : failed()))
  res.once('close', () => gunzip.destroy())
  return {
    data: (c) => {
      if (!gunzip.destroyed) gunzip.write(c)
    },
    end: () => {
      if (!gunzip.destroyed) gunzip.end()
    },
    error: () => {
      gunzip.destroy()
      if (started) res.destroy()
      else failed()
    },
  }
}

/** The fields of a gzip object delivered plain: no Content-Encoding, the plain length when known. */
export function gunzippedHead(headers: readonly string[], plainLength: number | undefined): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    if (name.length === 16 && name.toLowerCase() === 'content-encoding') continue
    if (name.length === 14 && name.toLowerCase() === 'content-length') continue
    let value = headers[i + 1] as string
    // varnishd's gunzip delivery weakens a strong ETag: the bytes are not the stored ones.
    if (name.length === 4 && name.toLowerCase() === 'etag') value = weakenedEtag(value)
    out.push(name, value)
  }
  if (plainLength !== undefined && plainLength >= 0) out.push('Content-Length', String(plainLength))
  return out
}
