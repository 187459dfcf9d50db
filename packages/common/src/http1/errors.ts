import { EdgeError } from '../errors.js'

/**
 * Why a request could not be read. Each kind has the status RFC 9110/9112 calls for; a
 * daemon may answer differently (nginx says 494/400 where varnish says 431) through
 * `Http1ServerOptions.errorResponse`.
 */
export type Http1ErrorKind =
  | 'bad-request'
  | 'request-line-too-long'
  | 'headers-too-large'
  | 'unsupported-version'
  | 'unsupported-transfer-coding'
  | 'header-timeout'
  | 'body-timeout'
  | 'proxy-protocol'

const STATUS: Record<Http1ErrorKind, number> = {
  'bad-request': 400,
  'request-line-too-long': 414,
  'headers-too-large': 431,
  'unsupported-version': 505,
  'unsupported-transfer-coding': 501,
  'header-timeout': 408,
  'body-timeout': 408,
  'proxy-protocol': 400,
}

export class Http1ParseError extends EdgeError {
  readonly kind: Http1ErrorKind
  readonly status: number

  constructor(kind: Http1ErrorKind, message: string) {
    super(`EDGE_ERR_HTTP1_${kind.toUpperCase().replaceAll('-', '_')}`, message)
    this.kind = kind
    this.status = STATUS[kind]
  }
}
