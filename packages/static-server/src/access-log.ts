import { close, open, write, writeSync } from 'node:fs'
import type { AccessLogModel } from './config/model.js'
import { formatLine } from './log-escape.js'
import type { VariableSource } from './variables.js'

/** A log's lines are written once this many bytes wait... */
const FLUSH_BYTES = 64 * 1024
/** ...or this long after the first of them (nginx `access_log ... buffer=64k flush=100ms`). */
const FLUSH_MS = 100

/** Every log with lines not yet handed to the kernel: written synchronously if the process exits. */
const unflushed = new Set<LogFile>()
let exitHookInstalled = false

/**
 * One access_log destination. nginx write(2)s each line as the request ends unless told to
 * buffer; we always buffer, as `buffer=64k flush=100ms` would: under load one system call
 * (through the thread pool) per request cost more than the rest of a small file's answer.
 * None is lost: close() (SIGTERM, SIGQUIT, reload) waits for every line, and an exit by any
 * other way writes what is still gathered, synchronously, before the process ends.
 */
class LogFile {
  readonly #path: string
  /** stdout/stderr: written through the stream, which keeps order and flushes at exit. */
  readonly #stream: NodeJS.WritableStream | undefined
  #fd: number | undefined
  #opening = false
  #failed = false
  #pending = ''
  #writing = false
  #scheduled = false
  #closed: (() => void) | undefined

  constructor(path: string) {
    this.#path = path
    this.#stream = path === '/dev/stdout' ? process.stdout : path === '/dev/stderr' ? process.stderr : undefined
  }

  append(line: string): void {
    if (this.#pending === '') unflushed.add(this)
    this.#pending += line
    if (this.#pending.length >= FLUSH_BYTES) this.#flush()
    else if (!this.#scheduled) {
      this.#scheduled = true
      // unref: a pending flush never keeps the process alive; the exit hook writes the lines.
      setTimeout(this.#onTimer, FLUSH_MS).unref()
    }
  }

  #onTimer = (): void => {
    this.#scheduled = false
    this.#flush()
  }

  #flush(): void {
    if (this.#writing || this.#pending === '') return
    if (this.#stream) {
      this.#stream.write(Buffer.from(this.#pending, 'latin1'))
      this.#pending = ''
      unflushed.delete(this)
      return
    }
    if (this.#failed) {
      // As before: a log that cannot be opened is not the client's problem.
      this.#pending = ''
      unflushed.delete(this)
      return
    }
    if (this.#fd === undefined) {
      if (this.#opening) return
      this.#opening = true
      // Opened in append mode, as nginx opens its logs.
      open(this.#path, 'a', 0o644, (err, fd) => {
        this.#opening = false
        if (err) this.#failed = true
        else this.#fd = fd
        this.#flush()
        this.#maybeClosed()
      })
      return
    }
    this.#writeOut(Buffer.from(this.#pending, 'latin1'))
    this.#pending = ''
    unflushed.delete(this)
  }

  #writeOut(buf: Buffer): void {
    this.#writing = true
    write(this.#fd as number, buf, 0, buf.length, null, (err, n) => {
      if (!err && n < buf.length) {
        this.#writeOut(buf.subarray(n))
        return
      }
      this.#writing = false
      this.#flush()
      this.#maybeClosed()
    })
  }

  /** At process exit: what is still gathered is written now (no later turn will come). */
  flushSync(): void {
    if (this.#pending === '') return
    try {
      const bytes = Buffer.from(this.#pending, 'latin1')
      if (this.#stream) this.#stream.write(bytes)
      else if (this.#fd !== undefined) writeSync(this.#fd, bytes)
    } catch {
      // Nothing more can be done at exit.
    }
    this.#pending = ''
  }

  /** Resolves once every line appended so far is written and the file is closed. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#closed = resolve
      this.#flush()
      this.#maybeClosed()
    })
  }

  #maybeClosed(): void {
    const done = this.#closed
    if (!done || this.#writing || this.#opening || (this.#pending !== '' && !this.#failed)) return
    this.#closed = undefined
    unflushed.delete(this)
    const fd = this.#fd
    this.#fd = undefined
    if (fd === undefined) done()
    else close(fd, () => done())
  }
}

/**
 * access_log files, opened once each (append, as nginx opens them) and shared by every
 * location that names them. `/dev/stdout` writes to our stdout.
 */
export class AccessLogs {
  readonly #files = new Map<string, LogFile>()

  constructor() {
    if (!exitHookInstalled) {
      exitHookInstalled = true
      process.on('exit', () => {
        for (const f of unflushed) f.flushSync()
      })
    }
  }

  /** Lines are byte strings (log-escape.ts): one character a byte. */
  write(st: VariableSource, logs: readonly AccessLogModel[]): void {
    for (const l of logs) {
      let f = this.#files.get(l.path)
      if (!f) {
        f = new LogFile(l.path)
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
