import { AccessLogWriter } from '@edgestack/common'
import type { AccessLogModel } from './config/model.js'
import type { RequestState } from './request-state.js'
import type { Template, VariableSource } from './variables.js'

/**
 * access_log files, opened once each (append, as nginx opens them) and shared by every
 * location that names them, each through the daemon layer's buffered writer (nginx's
 * `buffer=64k flush=100ms`). `/dev/stdout` writes to our stdout.
 */
export class AccessLogs {
  readonly #files = new Map<string, AccessLogWriter>()

  write(st: RequestState, logs: readonly AccessLogModel[]): void {
    for (const l of logs) {
      let f = this.#files.get(l.path)
      if (!f) {
        f = new AccessLogWriter(l.path)
        this.#files.set(l.path, f)
      }
      f.append(`${line(l.format, st)}\n`)
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

/** nginx writes `-` for a variable with no value in a log line. */
function line(t: Template, vars: VariableSource): string {
  let s = ''
  for (const p of t) {
    if (typeof p === 'string') s += p
    else s += vars.get(p.v) || '-'
  }
  return s
}
