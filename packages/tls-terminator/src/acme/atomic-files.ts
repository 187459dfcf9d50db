import { randomBytes } from 'node:crypto'
import { open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/**
 * Writes `content` to `path` so that a reader sees the old file or the new one, never a part:
 * a temporary file in the same directory (rename(2) is atomic only within one file system),
 * flushed to disk, then renamed over the name. A private key is created 0600 from its first
 * byte, not chmod-ed after (a reader in between would have seen it).
 */
export async function writeFileAtomic(path: string, content: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(tmp, 'wx', mode)
  try {
    await handle.writeFile(content)
    await handle.sync()
  } catch (err) {
    await handle.close().catch(() => undefined)
    await rm(tmp, { force: true })
    throw err
  }
  await handle.close()
  try {
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

export interface KeyPairFiles {
  cert: string
  key: string
}

/**
 * A new certificate and its key, each file whole. The key goes first: a terminator that reloads
 * between the two renames finds a mismatched pair, refuses it and keeps serving the old one,
 * and its settle time (certificate-watch.ts) means it rarely even tries. stunnel's `key`
 * may name the certificate file itself (it defaults to `cert`): then both go in that one file.
 */
export async function installKeyPair(files: KeyPairFiles, certPem: string, keyPem: string): Promise<void> {
  if (files.key === files.cert) {
    await writeFileAtomic(files.cert, `${certPem.trimEnd()}\n${keyPem}`, 0o600)
    return
  }
  await writeFileAtomic(files.key, keyPem, 0o600)
  await writeFileAtomic(files.cert, certPem)
}
