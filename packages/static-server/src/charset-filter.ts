import { charsetKey } from './config/charset-maps.js'
import { recoder } from './charset-recode.js'
import type { RequestState } from './request-state.js'

/**
 * ngx_http_charset_header_filter on an answer's fields: which charset the answer is sent in
 * (X-Accel-Charset, else `charset` for the charset_types or, with override_charset, for a
 * proxied answer naming its own), which it is in (the proxied answer's own, else
 * source_charset), the `; charset=` nginx's header filter appends, and the recoding between
 * the two through a charset_map (the response's body filter). 301 and 302 get no charset (old
 * browsers took the redirect's for the next page's).
 */
export function charsetFilter(st: RequestState, status: number, headers: string[]): void {
  st.res.bodyFilter = undefined
  // Nothing to name or recode: no `charset` here and no X-Accel-Charset (the common case).
  if (st.conf.charset === undefined && !st.accelCharset) return
  let at = -1
  for (let i = 0; i < headers.length; i += 2) if ((headers[i] as string).toLowerCase() === 'content-type') at = i
  if (at < 0) return
  const c = st.conf
  const cs = c.charsets
  const value = headers[at + 1] as string
  // ngx_http_upstream_copy_content_type: a proxied type's charset parameter is the answer's charset.
  const { typeLen, own } = st.typeFromUpstream ? upstreamType(value) : { typeLen: value.length, own: '' }
  const known = (name: string) => cs.names.has(charsetKey(name))
  let dst: string
  const accel = st.accelCharset
  if (accel) {
    if (!known(accel)) {
      st.logError(`unknown charset "${accel}" to override`)
      return
    }
    dst = accel
  } else {
    if (c.charset === undefined) return
    if (own) {
      if (!c.overrideCharset) return
    } else if (c.charsetTypes !== '*' && !c.charsetTypes.has(value.slice(0, typeLen).toLowerCase())) return
    dst = nameOf(st, c.charset)
  }
  const src = own || (c.sourceCharset === undefined ? undefined : nameOf(st, c.sourceCharset))
  const redirect = status === 301 || status === 302
  const set = (cut: boolean) => {
    const type = cut ? value.slice(0, typeLen) : value
    headers[at + 1] = !redirect && (cut || typeLen === value.length) ? `${type}; charset=${dst}` : type
  }
  if (src === undefined) {
    set(false)
    return
  }
  if (!known(dst) || !known(src)) {
    // Both unknown and the one named like the other (nginx compares dst's length of both).
    if (known(dst) === known(src) && src.slice(0, dst.length).toLowerCase() === dst.toLowerCase()) {
      set(false)
      return
    }
    st.logError(`no "charset_map" between the charsets "${src}" and "${dst}"`)
    return
  }
  if (charsetKey(src) === charsetKey(dst)) {
    set(true)
    return
  }
  if (headers.some((h, i) => i % 2 === 0 && h.toLowerCase() === 'content-encoding' && headers[i + 1] !== '')) return
  const table = cs.tables.get(`${charsetKey(src)}\0${charsetKey(dst)}`)
  if (table === undefined) {
    st.logError(`no "charset_map" between the charsets "${src}" and "${dst}"`)
    return
  }
  set(true)
  const filter = recoder(table)
  st.res.bodyFilter = filter
  // The length goes (ngx_http_clear_content_length), and with it the range filter's ranges.
  if (!filter.keepsLength && !st.typeFromUpstream) {
    const ar = headers.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'accept-ranges')
    if (ar >= 0) headers.splice(ar, 2)
  }
}

/** Whether the body filter would change this answer's length: the range filter then sends it whole. */
export function recodesLength(st: RequestState, type: string): boolean {
  const c = st.conf
  if (c.charset === undefined || c.sourceCharset === undefined || st.accelCharset) return false
  if (c.charsetTypes !== '*' && !c.charsetTypes.has(type.toLowerCase())) return false
  const t = c.charsets.tables.get(`${charsetKey(nameOf(st, c.sourceCharset))}\0${charsetKey(nameOf(st, c.charset))}`)
  return t !== undefined && t.kind !== 'bytes'
}

function nameOf(st: RequestState, name: string): string {
  return name.startsWith('$') ? st.get(name.slice(1)) : name
}

/** The type's length before a `charset=` parameter, and that charset (quotes dropped). */
function upstreamType(value: string): { typeLen: number; own: string } {
  let p = value.indexOf(';')
  while (p >= 0) {
    const semi = p
    p++
    while (value[p] === ' ') p++
    if (p >= value.length) break
    if (value.slice(p, p + 8).toLowerCase() === 'charset=') {
      let own = value.slice(p + 8)
      if (own.startsWith('"')) own = own.slice(1)
      if (own.endsWith('"')) own = own.slice(0, -1)
      return { typeLen: semi, own }
    }
    p = value.indexOf(';', p)
  }
  return { typeLen: value.length, own: '' }
}
