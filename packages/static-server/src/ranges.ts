export interface ByteRange {
  start: number
  /** Exclusive. */
  end: number
}

/**
 * ngx_http_range_parse: `undefined` means "ignore the header, send 200" (nginx's
 * NGX_DECLINED), 'unsatisfiable' a 416, otherwise the ranges in request order. Ranges starting
 * past the end are dropped; ranges whose total exceeds the file are ignored altogether.
 */
export function parseRange(header: string, size: number): ByteRange[] | 'unsatisfiable' | undefined {
  // `bytes=` with nothing after it is ignored (a 200), as nginx's `len < 7` check does.
  if (header.length < 7 || header.slice(0, 6).toLowerCase() !== 'bytes=') return undefined
  const out: ByteRange[] = []
  let total = 0
  let i = 6
  const n = header.length
  const skipSpaces = () => {
    while (header[i] === ' ') i++
  }
  const digits = (): number | undefined => {
    const s = i
    let v = 0
    while (i < n && header.charCodeAt(i) >= 48 && header.charCodeAt(i) <= 57) {
      v = v * 10 + header.charCodeAt(i) - 48
      i++
    }
    return i === s || !Number.isSafeInteger(v) ? undefined : v
  }
  for (;;) {
    skipSpaces()
    let start = 0
    let end: number
    let suffix = false
    if (header[i] === '-') {
      suffix = true
    } else {
      const s = digits()
      if (s === undefined) return 'unsatisfiable'
      start = s
    }
    skipSpaces()
    if (header[i++] !== '-') return 'unsatisfiable'
    skipSpaces()
    if (!suffix && (i >= n || header[i] === ',')) {
      end = size
    } else {
      const e = digits()
      if (e === undefined) return 'unsatisfiable'
      skipSpaces()
      if (i < n && header[i] !== ',') return 'unsatisfiable'
      if (suffix) {
        start = e < size ? size - e : 0
        end = size
      } else {
        end = e >= size ? size : e + 1
      }
    }
    if (start < end) {
      out.push({ start, end })
      total += end - start
    } else if (start === 0) {
      return undefined
    }
    if (header[i++] !== ',') break
  }
  if (out.length === 0) return 'unsatisfiable'
  if (total > size) return undefined
  return out
}
