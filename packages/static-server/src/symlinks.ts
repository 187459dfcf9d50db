import { lstat, stat } from 'node:fs/promises'
import type { RequestState } from './request-state.js'
import { expand } from './variables.js'

/**
 * `disable_symlinks on | if_not_owner [from=PART]`, as nginx's ngx_open_file_wrapper applies
 * it: every path component below `from` (the file system root without it) is opened with
 * O_NOFOLLOW. A symlink as the last component of a file fails with ELOOP (403); as a directory
 * on the way, or as the directory a listing or an index is asked of, with ENOTDIR (404). Under
 * `if_not_owner` a link is followed when it and its target have the same owner, and refused
 * with EACCES (403) wherever it is when they do not.
 * Undefined: nothing refused. Every lstat is asynchronous and they run side by side.
 */
export async function symlinkStatus(st: RequestState, path: string, isDir: boolean): Promise<number | undefined> {
  const mode = st.conf.disableSymlinks
  if (mode === false) return undefined
  const from = mode.from ? expand(mode.from, st).replace(/\/+$/, '') : ''
  const below = from !== '' && (path === from || path.startsWith(`${from}/`)) ? from.length : 0
  const parts: string[] = []
  for (let i = path.indexOf('/', below + 1); i !== -1; i = path.indexOf('/', i + 1)) parts.push(path.slice(0, i))
  const last = path.replace(/\/+$/, '')
  if (last.length > below) parts.push(last)
  const links = await Promise.all(parts.map((p) => forbiddenLink(p, mode.ifNotOwner)))
  const at = links.findIndex((x) => x !== undefined)
  if (at === -1) return undefined
  if (links[at] === 'owner') return 403
  return at === parts.length - 1 && !isDir ? 403 : 404
}

async function forbiddenLink(p: string, ifNotOwner: boolean): Promise<'link' | 'owner' | undefined> {
  const l = await lstat(p).catch(() => undefined)
  if (!l?.isSymbolicLink()) return undefined
  if (!ifNotOwner) return 'link'
  const target = await stat(p).catch(() => undefined)
  return target === undefined || target.uid !== l.uid ? 'owner' : undefined
}
