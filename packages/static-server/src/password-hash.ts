import { createHash } from 'node:crypto'
import md5Crypt from 'apache-md5'
import bcrypt from 'bcryptjs'
import desCrypt from 'unix-crypt-td-js'
import { shaCrypt } from './sha-crypt.js'

/**
 * ngx_crypt (src/core/ngx_crypt.c) for one htpasswd line's password field: `$apr1$`, `{PLAIN}`,
 * `{SSHA}` and `{SHA}` by nginx itself, everything else by the C library's crypt(3), which on
 * Debian 12 is libxcrypt. The answer is the string nginx compares with the stored field:
 * `{ error }` is nginx's NGX_ERROR (500), for the libxcrypt methods we do not have.
 */
export type HashResult = { value: string } | { error: string }

/**
 * libxcrypt's failure token for a setting it cannot parse: `*0`, or `*1` when the setting
 * itself begins `*0`, so that it never equals the stored field (a line `user:*0` stays shut).
 */
const failed = (stored: string) => ({ value: stored.startsWith('*0') ? '*1' : '*0' })
const DES = /^[./0-9A-Za-z]{13}$/
const BCRYPT = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/
/** libxcrypt methods Debian enables that no maintained npm package gives us (README, DIFFERENCES.md). */
const UNSUPPORTED: readonly [string, string][] = [
  ['$y$', 'yescrypt'],
  ['$2x$', 'bcrypt with the sign-extension bug'],
  ['$gy$', 'gost-yescrypt'],
  ['$7$', 'scrypt'],
  ['$sha1$', 'sha1crypt'],
  ['$md5', 'SunMD5'],
  ['$3$', 'NT'],
  ['_', 'BSDi extended DES'],
]

export async function passwordHash(password: Buffer, stored: string): Promise<HashResult> {
  // crypt(3) and nginx's own methods take C strings: the password ends at a NUL.
  const nul = password.indexOf(0)
  const key = nul < 0 ? password : password.subarray(0, nul)
  const latin1 = key.toString('latin1')
  if (stored.startsWith('$apr1$') || stored.startsWith('$1$')) {
    // Both are MD5-crypt (ngx_crypt_apr1, glibc's md5-crypt): a salt of at most 8 bytes.
    const magic = stored.startsWith('$1$') ? '$1$' : '$apr1$'
    const rest = stored.slice(magic.length)
    const end = rest.indexOf('$')
    return { value: md5Crypt(latin1, `${magic}${(end < 0 ? rest : rest.slice(0, end)).slice(0, 8)}$`) }
  }
  if (stored.startsWith('{PLAIN}')) return { value: `{PLAIN}${latin1}` }
  if (stored.startsWith('{SSHA}')) return { value: ssha(key, stored.slice(6)) }
  if (stored.startsWith('{SHA}')) return { value: `{SHA}${createHash('sha1').update(key).digest('base64')}` }
  if (stored.startsWith('$5$') || stored.startsWith('$6$')) {
    const v = await shaCrypt(key, stored)
    return v === undefined ? failed(stored) : { value: v }
  }
  if (stored.startsWith('$2') && stored[2] !== 'x') {
    if (!BCRYPT.test(stored)) return failed(stored)
    // bcryptjs hashes the UTF-8 of a string: a password that is not UTF-8 cannot be given
    // to it byte for byte (DIFFERENCES.md). Its async hash runs in slices of the event loop.
    const text = key.toString('utf8')
    if (!Buffer.from(text, 'utf8').equals(key)) return failed(stored)
    return { value: await bcrypt.hash(text, stored.slice(0, 29)).catch(() => failed(stored).value) }
  }
  for (const [prefix, name] of UNSUPPORTED) {
    if (stored.startsWith(prefix)) return { error: `crypt() failed: ${name} ("${prefix}") hashes are not supported by static-server` }
  }
  // Traditional DES: two salt characters and eleven of hash; anything else is a setting
  // libxcrypt refuses, with its failure token.
  if (DES.test(stored)) return { value: desCrypt(Array.from(key.subarray(0, 8)), stored.slice(0, 2)) }
  return failed(stored)
}

/**
 * ngx_crypt_ssha: the stored value's bytes past the 20 of the digest are the salt; an
 * undecodable value counts as one without salt.
 */
function ssha(key: Buffer, encoded: string): string {
  const decoded = strictBase64(encoded)
  const salt = decoded && decoded.length >= 20 ? decoded.subarray(20) : Buffer.alloc(0)
  const digest = createHash('sha1').update(key).update(salt).digest()
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`
}

const BASE64 = /^[A-Za-z0-9+/]*$/

/**
 * ngx_decode_base64: the standard alphabet up to the first `=`, refused on any other byte
 * or a length that leaves one lone character (Node's decoder would skip them silently).
 */
export function strictBase64(s: string): Buffer | undefined {
  const eq = s.indexOf('=')
  const body = eq < 0 ? s : s.slice(0, eq)
  if (!BASE64.test(body) || body.length % 4 === 1) return undefined
  return Buffer.from(body, 'base64')
}
