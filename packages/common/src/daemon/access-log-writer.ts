import { close, open, openSync, write, writeSync } from 'node:fs'

/** A log's lines are written once this many bytes wait... */
const FLUSH_BYTES = 64 * 1024
/** ...or this long after the first of them (nginx `access_log ... buffer=64k flush=100ms`). */
const FLUSH_MS = 100

/** Every log with lines not yet handed to the kernel: written synchronously if the process exits. */
const unflushed = new Set<AccessLogWriter>()
let exitHookInstalled = false

/**
 * The one buffered access-log writer every daemon uses. nginx write(2)s each line as the request
 * ends unless told to buffer, and varnishd leaves logging to varnishncsa, out of its request
 * path; we always buffer, as `buffer=64k flush=100ms` would: under load one system call (through
 * the thread pool) per request cost more than the rest of a small file's answer or a cache hit.
 * None is lost: close() (every kind of stop, a reload) waits for every line, and an exit by any
 * other way writes what is still gathered, synchronously, in the process's `exit` event.
 * `/dev/stdout` and `/dev/stderr` (and no path) write through the process's own streams, which
 * keep order with the daemon's other output.
 */
export class AccessLogWriter {
  readonly #path: string
  readonly #stream: NodeJS.WritableStream | undefined
  #fd: number | undefined
  #opening = false
  #failed = false
  #pending = ''
  #writing = false
  #scheduled = false
  #closed: (() => void) | undefined
  readonly #encoding: BufferEncoding

  /**
   * `encoding`: how the lines' characters become bytes. static-server's lines are byte strings
   * (one character a byte, as nginx's log escaping works on bytes): 'latin1' writes them as
   * they are; the other daemons write text, 'utf8'.
   */
  constructor(path = '/dev/stdout', opts: { encoding?: 'utf8' | 'latin1' } = {}) {
    this.#path = path
    this.#encoding = opts.encoding ?? 'utf8'
    this.#stream = path === '/dev/stdout' ? process.stdout : path === '/dev/stderr' ? process.stderr : undefined
    if (!exitHookInstalled) {
      exitHookInstalled = true
      process.on('exit', () => {
        for (const f of unflushed) f.flushSync()
      })
    }
  }

  get path(): string {
    return this.#path
  }

  /** `text` is one or more whole lines, newline included. */
  append(text: string): void {
    if (this.#pending === '') unflushed.add(this)
    this.#pending += text
    if (this.#pending.length >= FLUSH_BYTES) this.#flush()
    else if (!this.#scheduled) {
      this.#scheduled = true
      // unref: a pending flush never keeps the process alive; the exit hook writes the lines.
      setTimeout(this.#onTimer, FLUSH_MS).unref()
    }
  }

  #bytes(): Buffer {
    return Buffer.from(this.#pending, this.#encoding)
  }

  #onTimer = (): void => {
    this.#scheduled = false
    this.#flush()
  }

  #flush(): void {
    if (this.#writing || this.#pending === '') return
    if (this.#stream) {
      this.#stream.write(this.#bytes())
      this.#pending = ''
      unflushed.delete(this)
      return
    }
    if (this.#failed) {
      // A log that cannot be opened is not the client's problem.
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
    this.#writeOut(this.#bytes())
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
      if (this.#stream) this.#stream.write(this.#bytes())
      else if (this.#fd !== undefined) writeSync(this.#fd, this.#bytes())
      else if (!this.#failed) {
        const fd = openSyncAppend(this.#path)
        if (fd !== undefined) writeSync(fd, this.#bytes())
      }
    } catch {
      // Nothing more can be done at exit.
    }
    this.#pending = ''
    unflushed.delete(this)
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

/** Only at exit, when no later turn of the event loop will come for an asynchronous open. */
function openSyncAppend(path: string): number | undefined {
  try {
    return openSync(path, 'a', 0o644)
  } catch {
    return undefined
  }
}
