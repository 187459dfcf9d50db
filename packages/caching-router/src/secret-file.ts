import { readFile } from 'node:fs/promises'
import { StartupError } from '@edgestack/common'

/** `-S FILE`: the admin CLI's shared secret, read whole (varnishd hashes the file's bytes). */
export async function readSecret(file: string | undefined): Promise<Buffer | undefined> {
  if (file === undefined) return undefined
  try {
    return await readFile(file)
  } catch (err) {
    throw new StartupError(`-S ${file}: ${(err as Error).message}`, { cause: err })
  }
}
