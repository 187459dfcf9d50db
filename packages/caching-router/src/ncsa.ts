import { clfNow, getHeader } from '@edgestack/common'

export interface NcsaRecord {
  client: string
  method: string
  url: string
  proto: string
  headers: readonly string[]
  status: number
  bytes: number
  /** varnishncsa's `%{Varnish:handling}x`: hit, miss, pass, pipe, synth. */
  handling: string
}

/**
 * varnishncsa's default format, `%h %l %u %t "%r" %s %b "%{Referer}i" "%{User-agent}i"`,
 * where `%r` carries `http://host` before the URL as varnishncsa writes it. With `handling`
 * on, `%{Varnish:handling}x` is appended so hit/miss can be read from the log.
 */
export function ncsaLine(r: NcsaRecord, withHandling: boolean): string {
  const host = getHeader(r.headers, 'host')
  const target = host !== undefined && r.url.startsWith('/') ? `http://${host}${r.url}` : r.url
  const line = `${r.client} - - [${clfNow()}] "${r.method} ${target} ${r.proto}" ${r.status} ${r.bytes || '-'} "${
    getHeader(r.headers, 'referer') ?? '-'
  }" "${getHeader(r.headers, 'user-agent') ?? '-'}"`
  return withHandling ? `${line} ${r.handling}` : line
}
