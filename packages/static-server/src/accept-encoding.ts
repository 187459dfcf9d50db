/**
 * ngx_http_gzip_accept_encoding, to the letter: `gzip` in any case, at the start or after `,`
 * or a space (`x-gzip` is not it), and not refused with `q=0`.
 */
export function acceptsGzip(value: string): boolean {
  const lower = value.toLowerCase()
  let p = -1
  for (let from = 0; ; from = p + 4) {
    p = lower.indexOf('gzip', from)
    if (p < 0) return false
    if (p === 0 || lower[p - 1] === ',' || lower[p - 1] === ' ') break
  }
  p += 4
  for (;;) {
    if (p >= lower.length) return true
    const c = lower[p++]
    if (c === ',') return true
    if (c === ';') break
    if (c !== ' ') return false
  }
  for (;;) {
    if (p >= lower.length) return true
    const c = lower[p++]
    if (c === 'q') break
    if (c !== ' ') return false
  }
  if (p + 2 > lower.length || lower[p++] !== '=') return false
  return quantity(lower, p) !== 0
}

/** ngx_http_gzip_quantity, quirks included ("0.5" counts as 5): only zero or not matters. */
function quantity(s: string, from: number): number {
  let p = from
  let c = s[p++]
  if (c !== '0' && c !== '1') return 0
  let q = (c === '1' ? 1 : 0) * 100
  if (p === s.length) return q
  c = s[p++]
  if (c === ',' || c === ' ') return q
  if (c !== '.') return 0
  let n = 0
  while (p < s.length) {
    c = s[p++] as string
    if (c === ',' || c === ' ') break
    if (c >= '0' && c <= '9') {
      q += c.charCodeAt(0) - 48
      n++
      continue
    }
    return 0
  }
  return q > 100 || n > 3 ? 0 : q
}
