/**
 * The error catalogue shared by every edgestack daemon. Each error carries a stable `code`
 * (in the manner of undici's `UND_ERR_*`) so callers branch on codes, never on messages.
 */

export class EdgeError extends Error {
  readonly code: string

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/** Wrong command-line usage. CLIs exit 2 for it, as getopt-style programs do. */
export class UsageError extends EdgeError {
  constructor(message: string, options?: ErrorOptions) {
    super('EDGE_ERR_USAGE', message, options)
  }
}

export interface SourcePosition {
  file: string
  line: number
  column?: number
}

/**
 * A configuration problem, positioned in its source file. The message reads
 * `file:line: directive: problem` so editors and people can jump straight to it.
 */
export class ConfigError extends EdgeError {
  readonly position: SourcePosition | undefined
  readonly directive: string | undefined
  readonly problem: string

  constructor(
    problem: string,
    where: { position?: SourcePosition; directive?: string } = {},
    options?: ErrorOptions,
  ) {
    const parts: string[] = []
    if (where.position) parts.push(formatPosition(where.position))
    if (where.directive) parts.push(where.directive)
    parts.push(problem)
    super('EDGE_ERR_CONFIG', parts.join(': '), options)
    this.position = where.position
    this.directive = where.directive
    this.problem = problem
  }
}

/** A runtime failure at start-up (port in use, unreadable file): exit 1. */
export class StartupError extends EdgeError {
  constructor(message: string, options?: ErrorOptions) {
    super('EDGE_ERR_STARTUP', message, options)
  }
}

/**
 * A manager's children died before serving (exit 1). `reported`: they exited with an error
 * they wrote themselves on the shared stderr (a port in use, a file), so the manager adds nothing.
 */
export class ChildStartError extends EdgeError {
  readonly reported: boolean

  constructor(message: string, reported: boolean) {
    super('EDGE_ERR_CHILD_START', message)
    this.reported = reported
  }
}

export function formatPosition(p: SourcePosition): string {
  return p.column === undefined ? `${p.file}:${p.line}` : `${p.file}:${p.line}:${p.column}`
}

/** Exit status for an error that ended start-up: 2 for usage, 1 for everything else. */
export function exitCodeFor(err: unknown): number {
  return err instanceof UsageError ? 2 : 1
}
