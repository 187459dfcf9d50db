import { open } from 'node:fs/promises'
import { errnoText, NginxConfError } from './errors.js'

/**
 * nginx opens every log file its configuration names before it starts (and under -t): one it
 * cannot open stops it with `open() "PATH" failed (errno: text)`, without a line. Opened in
 * append mode and closed again, so a missing file is created as nginx creates it; the running
 * server opens them for itself. The compiled-in defaults are not checked: ours differ.
 */
export async function openLogs(paths: ReadonlySet<string>, file: string): Promise<void> {
  for (const p of paths) {
    const fh = await open(p, 'a', 0o644).catch((err: NodeJS.ErrnoException) => {
      throw new NginxConfError(`open() "${p}" failed (${errnoText(err)})`, file, 0)
    })
    await fh.close()
  }
}
