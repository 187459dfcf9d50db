import winston from 'winston'
import { AccessLogWriter } from './daemon/access-log-writer.js'
import { UsageError } from './errors.js'

export type Logger = winston.Logger
export type LogLevel = 'error' | 'warn' | 'info' | 'debug'
/** `--log-format`: the daemon's own lines as text, or one JSON object a line (edgestack's flag). */
export type LogFormat = 'text' | 'json'

export interface LoggerOptions {
  /** The daemon's name, shown in every line. */
  name: string
  level?: LogLevel
  /** Write to this file instead of stdout. */
  file?: string
  /** With `file`, write to stdout as well (stunnel's `foreground = yes` with `output`). */
  alsoStdout?: boolean
  format?: LogFormat
}

/** `--log-format text|json`, checked once at start. */
export function parseLogFormat(text: string | undefined): LogFormat {
  if (text === undefined || text === 'text') return 'text'
  if (text === 'json') return 'json'
  throw new UsageError(`--log-format: "${text}" is not text or json`)
}

/**
 * `--log-format json`: `{"timestamp":...,"level":"info","name":"tls-terminator","message":...}`
 * and the child logger's fields (`conn`, `req`, ...) beside them as their own keys, for log
 * pipelines (Loki, Elasticsearch, journald's JSON) to index without parsing messages.
 */
const jsonLine = winston.format.printf((info) => {
  const { level, message, timestamp, name, ...rest } = info as winston.Logform.TransformableInfo & { timestamp: string; name: string }
  return JSON.stringify({ timestamp, level, name, message: String(message), ...rest })
})

/**
 * The daemon's own log: `2026-01-01T00:00:00.000Z info tls-terminator: message key=value`, or
 * with `format: 'json'` one JSON object a line.
 * Child loggers (`logger.child({ conn: 12 })`) add per-connection fields to every line.
 */
export function createLogger(opts: LoggerOptions): Logger {
  const line = winston.format.printf((info) => {
    const { level, message, timestamp, name, ...rest } = info as winston.Logform.TransformableInfo & {
      timestamp: string
      name: string
    }
    const fields = Object.entries(rest)
      .filter(([k]) => typeof k === 'string')
      .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
    return `${timestamp} ${level} ${name}: ${String(message)}${fields.length ? ` ${fields.join(' ')}` : ''}`
  })
  return winston.createLogger({
    level: opts.level ?? 'info',
    defaultMeta: { name: opts.name },
    format: winston.format.combine(winston.format.timestamp(), opts.format === 'json' ? jsonLine : line),
    transports: opts.file && opts.alsoStdout ? [transportFor(opts.file), transportFor(undefined)] : [transportFor(opts.file)],
  })
}

/**
 * After logrotate moved the file away: the file transports open it again by name (stunnel's and
 * nginx's SIGUSR1). Lines logged meanwhile go to whichever file the transport had open.
 */
export function reopenLogFiles(logger: Logger): void {
  for (const t of [...logger.transports]) {
    if (!(t instanceof winston.transports.File)) continue
    logger.remove(t)
    logger.add(new winston.transports.File({ filename: t.filename, dirname: t.dirname }))
  }
}

export interface AccessLog {
  /** Writes one finished line, already in the real program's format. */
  write(line: string): void
  /** Opens the file again by name, after logrotate moved it (SIGUSR1). */
  reopen?(): void
  /** Resolves once every line written so far is out. */
  close(): Promise<void>
}

/**
 * Access logs are written verbatim (nginx `combined`, varnishncsa's default, stunnel's
 * connection summary) so that existing log parsers read them unchanged; through the one
 * buffered writer (daemon/access-log-writer.ts), to stdout without a file.
 */
export function createAccessLog(file?: string, opts: { encoding?: 'utf8' | 'latin1' } = {}): AccessLog {
  let writer = new AccessLogWriter(file, opts)
  return {
    write(line) {
      writer.append(`${line}\n`)
    },
    reopen() {
      void writer.close()
      writer = new AccessLogWriter(file, opts)
    },
    close() {
      return writer.close()
    },
  }
}

function transportFor(file: string | undefined): winston.transport {
  return file ? new winston.transports.File({ filename: file }) : new winston.transports.Console()
}
