import { rm, writeFile } from 'node:fs/promises'
import { StartupError } from '../errors.js'

/**
 * The pid file, as nginx's `pid` and varnishd's `-P` write it: the number and a newline, written
 * once the daemon listens, removed when it exits. `describe` turns a failure to write into the
 * real program's words (nginx: `[emerg] open() "..." failed (2: No such file or directory)`).
 */
export class PidFile {
  readonly path: string
  readonly #describe: (err: NodeJS.ErrnoException) => string

  constructor(path: string, describe: (err: NodeJS.ErrnoException) => string = (err) => `cannot write pid file ${path}: ${err.code}`) {
    this.path = path
    this.#describe = describe
  }

  async write(pid = process.pid): Promise<void> {
    try {
      await writeFile(this.path, `${pid}\n`)
    } catch (err) {
      throw new StartupError(this.#describe(err as NodeJS.ErrnoException), { cause: err })
    }
  }

  /** Never fails: a pid file already gone is what we wanted. */
  async remove(): Promise<void> {
    await rm(this.path, { force: true }).catch(() => undefined)
  }
}

/** nginx's `(errno: strerror)`, for the errors opening a file meets (pid file, logs, includes). */
export function errnoText(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return '2: No such file or directory'
    case 'EACCES':
      return '13: Permission denied'
    case 'EISDIR':
      return '21: Is a directory'
    case 'ENOTDIR':
      return '20: Not a directory'
    default:
      return err.message
  }
}
