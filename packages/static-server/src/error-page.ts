import { STATUS_CODES } from 'node:http'

/** nginx's reason phrases where they differ from Node's. */
const REASONS: Record<number, string> = {
  302: 'Found',
  401: 'Authorization Required',
  405: 'Not Allowed',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Large',
  416: 'Requested Range Not Satisfiable',
  494: 'Request Header Or Cookie Too Large',
  503: 'Service Temporarily Unavailable',
  504: 'Gateway Time-out',
}

/** The title of nginx's page for `status`. */
export function reason(status: number): string {
  return REASONS[status] ?? STATUS_CODES[status] ?? 'Unknown'
}

/**
 * ngx_http_status_lines: the reason nginx writes on the status line, which is not always its
 * page's title (`302 Moved Temporarily` over a page titled `302 Found`); a status it has no
 * line for goes out as `HTTP/1.1 418 ` with an empty reason.
 */
const STATUS_LINES = new Map<number, string>([
  [200, 'OK'], [201, 'Created'], [202, 'Accepted'], [204, 'No Content'], [206, 'Partial Content'],
  [301, 'Moved Permanently'], [302, 'Moved Temporarily'], [303, 'See Other'], [304, 'Not Modified'],
  [307, 'Temporary Redirect'], [308, 'Permanent Redirect'],
  [400, 'Bad Request'], [401, 'Unauthorized'], [402, 'Payment Required'], [403, 'Forbidden'], [404, 'Not Found'],
  [405, 'Not Allowed'], [406, 'Not Acceptable'], [408, 'Request Time-out'], [409, 'Conflict'], [410, 'Gone'],
  [411, 'Length Required'], [412, 'Precondition Failed'], [413, 'Request Entity Too Large'],
  [414, 'Request-URI Too Large'], [415, 'Unsupported Media Type'], [416, 'Requested Range Not Satisfiable'],
  [421, 'Misdirected Request'], [429, 'Too Many Requests'],
  [500, 'Internal Server Error'], [501, 'Not Implemented'], [502, 'Bad Gateway'], [503, 'Service Temporarily Unavailable'],
  [504, 'Gateway Time-out'], [505, 'HTTP Version Not Supported'], [507, 'Insufficient Storage'],
])

export function statusLineReason(status: number): string {
  return STATUS_LINES.get(status) ?? ''
}

const cache = new Map<string, Buffer>()

/**
 * nginx's built-in error page, byte for byte, with our name where nginx writes
 * `nginx/1.22.1` (or `nginx` with server_tokens off): see DIFFERENCES.md.
 */
export function errorPageBody(status: number, tokens: boolean): Buffer {
  const key = `${status}:${tokens}`
  let b = cache.get(key)
  if (!b) {
    const title = status === 494 ? '400 Request Header Or Cookie Too Large' : `${status} ${reason(status)}`
    const h1 = status === 494 ? `<center><h1>400 Bad Request</h1></center>\r\n<center>Request Header Or Cookie Too Large</center>` : `<center><h1>${title}</h1></center>`
    b = Buffer.from(
      `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n${h1}\r\n<hr><center>${tokens ? SERVER : 'static-server'}</center>\r\n</body>\r\n</html>\r\n`,
    )
    cache.set(key, b)
  }
  return b
}

export const SERVER = 'static-server'

/** The statuses nginx has a built-in page for (ngx_http_error_pages); others go out empty. */
const PAGES = new Set([301, 302, 303, 307, 308, 400, 401, 402, 403, 404, 405, 406, 408, 409, 410, 411, 412, 413, 414, 415, 416, 421, 429, 494, 495, 496, 497, 500, 501, 502, 503, 504, 505, 507])
export function hasPage(status: number): boolean {
  return PAGES.has(status)
}

/** Statuses after which nginx closes the connection (ngx_http_special_response_handler). */
export function closesConnection(status: number): boolean {
  return status === 400 || status === 413 || status === 414 || status === 494 || status === 500 || status === 501
}

/** Statuses add_header applies to without `always`. */
export function addHeaderApplies(status: number): boolean {
  return status === 200 || status === 201 || status === 204 || status === 206 || status === 301 || status === 302 || status === 303 || status === 304 || status === 307 || status === 308
}
