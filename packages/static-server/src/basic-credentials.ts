import type { Http1Request } from '@edgestack/common'
import { strictBase64 } from './password-hash.js'

export interface BasicCredentials {
  user: Buffer
  password: Buffer
}

/**
 * ngx_http_auth_basic_user: `Basic` (any case) and spaces, then base64 that nginx's decoder
 * takes, holding a colon after a user of at least one byte. Undefined is nginx's DECLINED:
 * no credentials, which auth_basic answers with 401 and $remote_user leaves empty.
 */
export function basicCredentials(req: Http1Request): BasicCredentials | undefined {
  const v = req.header('authorization')
  if (v === undefined || v.length < 6 || v.slice(0, 6).toLowerCase() !== 'basic ') return undefined
  let i = 6
  while (v[i] === ' ') i++
  if (i === v.length) return undefined
  const auth = strictBase64(v.slice(i))
  if (!auth) return undefined
  const colon = auth.indexOf(0x3a)
  if (colon <= 0) return undefined
  return { user: auth.subarray(0, colon), password: auth.subarray(colon + 1) }
}
