import { weakEtag } from './gzip-filter.js'
import { pipeline, type Readable, Transform } from 'node:stream'
import { typeMatches } from './gzip-filter.js'
import type { RequestState } from './request-state.js'
import { SsiDocument } from './ssi-document.js'
import { SsiShared } from './ssi-values.js'

/**
 * ngx_http_ssi_header_filter: whether this answer's body goes through the SSI filter: `ssi on`
 * where the answer is made, a type in ssi_types, and a body that is not known to be empty
 * (`length` 0). Any status qualifies, nginx's own error pages included.
 */
export function ssiApplies(st: RequestState, headers: readonly string[], length: number | undefined): boolean {
  const c = st.conf.ssi
  return c.on && length !== 0 && typeMatches(c, headers)
}

/**
 * The fields nginx changes on a main request's answer that the filter takes: no length (the
 * body is chunked), no Accept-Ranges (ranges are not served), and Last-Modified and ETag
 * dropped, or, under ssi_last_modified, kept with the ETag made weak.
 */
export function ssiHeaders(st: RequestState, headers: string[]): void {
  if (st.isSubrequest) return
  const keep = st.conf.ssi.lastModified
  for (let i = 0; i < headers.length; i += 2) {
    const lower = (headers[i] as string).toLowerCase()
    if (lower === 'content-length' || lower === 'accept-ranges' || (!keep && (lower === 'last-modified' || lower === 'etag'))) {
      headers.splice(i, 2)
      i -= 2
    } else if (lower === 'etag') {
      const n = headers.length
      weakEtag(headers, i)
      if (headers.length < n) i -= 2
    }
  }
}

/**
 * `source` through the SSI filter: each chunk scanned and its commands run before the next is
 * read (subrequests included), so a slow include holds the source back rather than piling it
 * up in memory.
 */
export function ssiStream(st: RequestState, source: Readable): Readable {
  st.ssiShared ??= new SsiShared(() => st.res.destroy())
  let doc: SsiDocument | undefined
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      ;(doc as SsiDocument).feed(chunk.toString('latin1')).then(() => cb(), cb)
    },
  })
  doc = new SsiDocument(st, st.ssiShared, st.conf.ssi, (bytes) => {
    if (bytes.length > 0) t.push(Buffer.from(bytes, 'latin1'))
  })
  pipeline(source, t, () => {})
  return t
}

/**
 * A body held in memory through the filter straight into the response (no gzip after it): the
 * same document and chunks as ssiStream without a stream per answer. Stops when the client
 * has gone.
 */
export async function ssiWhole(st: RequestState, body: Buffer): Promise<void> {
  const res = st.res
  st.ssiShared ??= new SsiShared(() => res.destroy())
  let gone = false
  const onClose = () => {
    gone = true
  }
  res.once('close', onClose)
  const doc = new SsiDocument(st, st.ssiShared, st.conf.ssi, (bytes) => {
    if (bytes.length > 0 && !gone) res.write(Buffer.from(bytes, 'latin1'))
  })
  try {
    for (const chunk of chunksOf(body)) {
      if (gone) return
      await doc.feed(chunk.toString('latin1'))
    }
    res.end()
  } finally {
    res.off('close', onClose)
  }
}

/** A whole body as chunks of at most `size` bytes (nginx reads a file in output_buffers' 32k). */
export function* chunksOf(buf: Buffer, size = 32 * 1024): Generator<Buffer> {
  for (let at = 0; at < buf.length; at += size) yield buf.subarray(at, at + size)
}
