/**
 * varnishd's RFC2616_Req_Gzip (cache_rfc2616.c): a client takes gzip when its Accept-Encoding
 * lists `x-gzip`, or `gzip` with a q-value above 0.
 */
export function acceptsGzip(headers: readonly string[]): boolean {
  return someCoding(headers, 'gzip', (c, q) => c === 'x-gzip' || (c === 'gzip' && q > 0))
}

/**
 * Whether `found` holds for one coding the Accept-Encoding fields list, with its q-value
 * (1 when none is given). A field that is exactly `fast` (what the lookup leaves) is that
 * coding at q=1 without splitting.
 */
export function someCoding(headers: readonly string[], fast: string, found: (coding: string, q: number) => boolean): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    if (name.length !== 15 || name.toLowerCase() !== 'accept-encoding') continue
    const value = headers[i + 1] as string
    if (value === fast) {
      if (found(fast, 1)) return true
      continue
    }
    for (const item of value.split(',')) {
      const [coding = '', ...params] = item.split(';')
      let q = 1
      for (const p of params) {
        const [k, v] = p.split('=')
        if (k?.trim().toLowerCase() === 'q') q = Number(v?.trim())
      }
      if (found(coding.trim().toLowerCase(), q)) return true
    }
  }
  return false
}

/**
 * cnt_recv with http_gzip_support: a request that goes to the cache (not a pass or a pipe)
 * has `Accept-Encoding: gzip` when its client takes gzip and none otherwise, so `Vary:
 * Accept-Encoding` makes at most two variants, whatever the clients send. The list is
 * copied when it changes (the request as it came in stays as it was, for ESI includes).
 */
export function normalizeAcceptEncoding(headers: string[]): string[] {
  let count = 0
  let exact = false
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    if (name.length === 15 && name.toLowerCase() === 'accept-encoding') {
      count++
      exact = headers[i + 1] === 'gzip' && name === 'Accept-Encoding'
    }
  }
  if (count === 0 || (count === 1 && exact)) return headers
  const gzip = acceptsGzip(headers)
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    if (name.length === 15 && name.toLowerCase() === 'accept-encoding') continue
    out.push(name, headers[i + 1] as string)
  }
  if (gzip) out.push('Accept-Encoding', 'gzip')
  return out
}
