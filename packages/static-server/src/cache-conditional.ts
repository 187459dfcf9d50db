import { getHeader } from '@edgestack/common'
import { parseHttpTime } from './http-date.js'
import type { RequestState } from './request-state.js'

/** What ngx_http_not_modified_filter clears from a 304 (and ngx_http_clear_accept_ranges). */
const NOT_ON_304 = new Set(['content-type', 'content-length', 'accept-ranges', 'content-encoding'])

/**
 * ngx_http_not_modified_filter on a cached or cacheable proxied answer (nginx leaves the
 * others alone: r->disable_not_modified = !u->cacheable): 412 when If-Unmodified-Since or
 * If-Match fails, 304 when If-Modified-Since and If-None-Match agree, else undefined. The
 * validators are the backend's Last-Modified and ETag.
 */
export function conditional(st: RequestState, status: number, fields: readonly string[]): 304 | 412 | undefined {
  if (status !== 200 || st.errorStatus !== undefined) return undefined
  const req = st.req
  const lm = getHeader(fields, 'last-modified')
  const mtime = lm === undefined ? -1 : parseHttpTime(lm)
  const etag = getHeader(fields, 'etag')
  const ius = req.header('if-unmodified-since')
  if (ius !== undefined && (mtime === -1 || parseHttpTime(ius) < mtime)) return 412
  const im = req.header('if-match')
  if (im !== undefined && !ifMatch(im, etag, false)) return 412
  const ims = req.header('if-modified-since')
  const inm = req.header('if-none-match')
  if (ims === undefined && inm === undefined) return undefined
  if (ims !== undefined && modifiedSince(st, ims, mtime)) return undefined
  if (inm !== undefined && !ifMatch(inm, etag, true)) return undefined
  return 304
}

/** The fields of a 304 made from the answer's. */
export function withoutBodyFields(headers: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) if (!NOT_ON_304.has((headers[i] as string).toLowerCase())) out.push(headers[i] as string, headers[i + 1] as string)
  return out
}

/** ngx_http_test_if_modified: true when the answer counts as modified. */
function modifiedSince(st: RequestState, ims: string, mtime: number): boolean {
  const mode = st.conf.ifModifiedSince
  if (mtime === -1 || mode === 'off') return true
  const t = parseHttpTime(ims)
  if (t === mtime) return false
  return mode === 'exact' || t < mtime
}

/** ngx_http_test_if_match: `*` or a listed tag (weak comparison for If-None-Match); no ETag never matches. */
function ifMatch(list: string, etag: string | undefined, weak: boolean): boolean {
  if (etag === undefined) return false
  if (list.trim() === '*') return true
  let tag = etag
  if (tag.startsWith('W/')) {
    if (!weak) return false
    tag = tag.slice(2)
  }
  for (let t of list.split(',')) {
    t = t.trim()
    if (weak && t.startsWith('W/')) t = t.slice(2)
    if (t === tag) return true
  }
  return false
}
