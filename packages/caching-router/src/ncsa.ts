import { clfNow, escapeLogValue, getHeader } from '@edgestack/common'
import { requestTarget } from './ncsa-format.js'

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
 * on, `%{Varnish:handling}x` is appended so hit/miss can be read from the log. Every value from
 * the request is escaped as varnishncsa escapes it (`\"`, `\\`, `\t`, `\xHH`): no client byte
 * can end the line or forge a field.
 */
export function ncsaLine(r: NcsaRecord, withHandling: boolean): string {
  // varnishncsa writes http://localhost for a request without Host (HTTP/1.0).
  const target = escapeLogValue(requestTarget(r))
  const referer = getHeader(r.headers, 'referer')
  const agent = getHeader(r.headers, 'user-agent')
  const line = `${r.client} - - [${clfNow()}] "${escapeLogValue(r.method)} ${target} ${escapeLogValue(r.proto)}" ${r.status} ${r.bytes || '-'} "${
    referer === undefined ? '-' : escapeLogValue(referer)
  }" "${agent === undefined ? '-' : escapeLogValue(agent)}"`
  return withHandling ? `${line} ${r.handling}` : line
}
