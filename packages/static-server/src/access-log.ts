import { AccessLogWriter } from '@edgestack/common'
import type { AccessLogModel } from './config/model.js'
import { formatLine } from './log-escape.js'
import type { VariableSource } from './variables.js'

/**
 * access_log files, opened once each (append, as nginx opens them) and shared by every
 * location that names them, each through the daemon layer's buffered writer (nginx's
 * `buffer=64k flush=100ms`). `/dev/stdout` writes to our stdout.
 */
export class AccessLogs {
  readonly #files = new Map<string, AccessLogWriter>()

  /** Lines are byte strings (log-escape.ts): one character a byte. */
  write(st: VariableSource, logs: readonly AccessLogModel[]): void {
    for (const l of logs) {
      let f = this.#files.get(l.path)
      if (!f) {
        f = new AccessLogWriter(l.path, { encoding: 'latin1' })
        this.#files.set(l.path, f)
      }
      f.append(`${formatLine(l.format, st)}\n`)
    }
  }

  /**
   * nginx's SIGUSR1 after logrotate moved the files: the lines gathered so far go to the files
   * open now (which are then closed), later lines to files opened anew by name.
   */
  reopen(): void {
    void this.close()
  }

  async close(): Promise<void> {
    const files = [...this.#files.values()]
    this.#files.clear()
    await Promise.all(files.map((f) => f.close()))
  }
}
