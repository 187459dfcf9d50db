import { readFile } from 'node:fs/promises'
import { isAbsolute, join } from 'node:path'
import { basicCredentials } from './basic-credentials.js'
import { errnoText } from './config/errors.js'
import { logContext } from './log-context.js'
import { passwordHash } from './password-hash.js'
import type { RequestState } from './request-state.js'
import { expand } from './variables.js'

/** What an access-phase handler says (nginx's NGX_OK, NGX_DECLINED, or a status). */
export type AccessResult = 'ok' | 'declined' | number

export type AuthLog = (level: string, msg: string) => void

/**
 * ngx_http_auth_basic_handler. The realm and the file are evaluated per request; a realm that
 * comes out as `off` turns the check off. The file is read for every request, as nginx reads
 * it, so a changed file applies at once. A file that does not exist is nginx's 403; one that
 * cannot be read, nginx's 500: never an open door.
 */
export async function authBasicPhase(st: RequestState, log: AuthLog): Promise<AccessResult> {
  const auth = st.conf.authBasic
  if (!auth) return 'declined'
  const realm = expand(auth.realm, st)
  if (realm === 'off') return 'declined'
  const unauthorized = () => {
    st.carried.push('WWW-Authenticate', `Basic realm="${realm}"`)
    return 401
  }
  const creds = basicCredentials(st.req)
  if (!creds) {
    log('info', `no user/password was provided for basic authentication${logContext(st)}`)
    return unauthorized()
  }
  let file = expand(auth.file, st)
  if (!isAbsolute(file)) file = join(auth.confDir, file)
  let text: Buffer
  try {
    text = await readFile(file)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    // nginx opens, then reads: a directory opens and fails its read.
    const call = e.code === 'EISDIR' ? 'pread()' : 'open()'
    log(e.code === 'ENOENT' ? 'error' : 'crit', `${call} "${file}" failed (${errnoText(e)})${logContext(st)}`)
    return e.code === 'ENOENT' ? 403 : 500
  }
  const user = creds.user.toString('latin1')
  const stored = storedPassword(text, creds.user)
  if (stored === undefined) {
    log('error', `user "${user}" was not found in "${file}"${logContext(st)}`)
    return unauthorized()
  }
  const hashed = await passwordHash(creds.password, stored)
  if ('error' in hashed) {
    log('crit', `${hashed.error}${logContext(st)}`)
    return 500
  }
  if (hashed.value === stored) return 'ok'
  log('error', `user "${user}": password mismatch${logContext(st)}`)
  return unauthorized()
}

/**
 * The password field of the first line `USER:` begins, as nginx's scan of the file: a line
 * beginning with `#` or CR is skipped, the field ends at LF, CR or a colon (htdigest's realm,
 * comments after it).
 */
export function storedPassword(file: Buffer, user: Buffer): string | undefined {
  let i = 0
  while (i < file.length) {
    const lf = file.indexOf(0x0a, i)
    const end = lf < 0 ? file.length : lf
    const c = file[i]
    if (c !== 0x23 && c !== 0x0d && end - i > user.length && file.compare(user, 0, user.length, i, i + user.length) === 0 && file[i + user.length] === 0x3a) {
      let j = i + user.length + 1
      while (j < end && file[j] !== 0x0d && file[j] !== 0x3a && file[j] !== 0) j++
      return file.toString('latin1', i + user.length + 1, j)
    }
    i = end + 1
  }
  return undefined
}
