import type { Http1Request } from '@edgestack/common'

/**
 * What nginx refuses with a 400 once the head is read, before any phase runs, beyond what the
 * shared http1 core refuses: a method outside its alphabet, a field it takes once given twice.
 */
export function badRequest(req: Http1Request): boolean {
  return !nginxMethod(req.method) || repeatsUniqueField(req.headers)
}

/**
 * ngx_http_parse_request_line takes a method of `A`-`Z`, `_` and `-` only: `get` or `G3T` is a
 * 400 that closes the connection, not a 405.
 */
function nginxMethod(method: string): boolean {
  if (method === 'GET') return true
  for (let i = 0; i < method.length; i++) {
    const c = method.charCodeAt(i)
    if ((c < 0x41 || c > 0x5a) && c !== 0x5f && c !== 0x2d) return false
  }
  return true
}

/**
 * Fields nginx 1.22 takes once (ngx_http_process_unique_header_line): a second one is a 400
 * ("client sent duplicate header line"), even with the same value. Which copy counts is then
 * never a question between us and the layers around us. (A repeated Content-Length is refused
 * by the shared http1 core already.)
 */
const UNIQUE_FIELDS = new Map(
  ['content-range', 'if-modified-since', 'if-unmodified-since', 'if-match', 'if-none-match', 'if-range', 'expect', 'authorization'].map(
    (name, i) => [name, 1 << i],
  ),
)

const UNIQUE_LENGTHS = new Set([...UNIQUE_FIELDS.keys()].map((n) => n.length))

function repeatsUniqueField(headers: readonly string[]): boolean {
  let seen = 0
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    // Only names of their lengths starting with a, c, e or i can be one of them: the common
    // fields (Accept-Encoding, Connection, Cookie, User-Agent...) skip the lookup.
    const c = name.charCodeAt(0) | 0x20
    if ((c !== 0x61 && c !== 0x63 && c !== 0x65 && c !== 0x69) || !UNIQUE_LENGTHS.has(name.length)) continue
    const bit = UNIQUE_FIELDS.get(name.toLowerCase())
    if (bit === undefined) continue
    if (seen & bit) return true
    seen |= bit
  }
  return false
}
