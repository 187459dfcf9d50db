import { createWriteStream, type WriteStream } from 'node:fs'
import type { AccessLogModel } from './config/model.js'
import type { RequestState } from './request-state.js'
import type { Template, VariableSource } from './variables.js'

/**
 * access_log files, opened once each (append, as nginx opens them) and shared by every
 * location that names them. `/dev/stdout` writes to our stdout.
 */
export class AccessLogs {
  readonly #streams = new Map<string, WriteStream | NodeJS.WritableStream>()

  write(st: RequestState, logs: readonly AccessLogModel[]): void {
    for (const l of logs) {
      let s = this.#streams.get(l.path)
      if (!s) {
        if (l.path === '/dev/stdout') s = process.stdout
        else if (l.path === '/dev/stderr') s = process.stderr
        else {
          const w = createWriteStream(l.path, { flags: 'a' })
          w.on('error', () => {})
          s = w
        }
        this.#streams.set(l.path, s)
      }
      s.write(`${line(l.format, st)}\n`)
    }
  }

  async close(): Promise<void> {
    const waits: Promise<void>[] = []
    for (const s of this.#streams.values()) {
      if (s === process.stdout || s === process.stderr) continue
      waits.push(new Promise((resolve) => (s as WriteStream).end(() => resolve())))
    }
    this.#streams.clear()
    await Promise.all(waits)
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
