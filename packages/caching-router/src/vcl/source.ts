import { ConfigError } from '@edgestack/common'

/** One VCL source text: the user's file or the built-in VCL appended after it. */
export interface VclSource {
  readonly name: string
  readonly text: string
}

/** A span in a source: where a token starts and how many characters it covers. */
export interface Span {
  readonly source: VclSource
  readonly offset: number
  readonly length: number
}

export function lineAndColumn(span: Span): { line: number; column: number } {
  const text = span.source.text
  let line = 1
  let lineStart = 0
  for (let i = 0; i < span.offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++
      lineStart = i + 1
    }
  }
  return { line, column: span.offset - lineStart + 1 }
}

/**
 * A VCL compile error. varnishd's compiler (VCC) prints one message per error with the source
 * line and a marker under the offending token; we keep its wording and add the `file:line:col`
 * prefix every edgestack config error carries, so editors jump straight to it.
 */
export class VclError extends ConfigError {
  readonly excerpt: string

  constructor(problem: string, span: Span, context?: { note: string; span: Span }) {
    const { line, column } = lineAndColumn(span)
    super(problem, { position: { file: span.source.name, line, column } })
    this.excerpt = excerpt(span)
    let message = `${this.message}\n${this.excerpt}`
    if (context) {
      const at = lineAndColumn(context.span)
      message += `\n${context.note} (${context.span.source.name}:${at.line}:${at.column})\n${excerpt(context.span)}`
    }
    this.message = message
  }
}

/** The source line holding the span and a caret line under it, as compilers print them. */
export function excerpt(span: Span): string {
  const text = span.source.text
  // lastIndexOf with -1 still looks at index 0: a file starting with a newline needs the guard.
  const start = span.offset === 0 ? 0 : text.lastIndexOf('\n', span.offset - 1) + 1
  let end = text.indexOf('\n', span.offset)
  if (end === -1) end = text.length
  const lineText = text.slice(start, end).replace(/\t/g, ' ')
  const col = span.offset - start
  const width = Math.max(1, Math.min(span.length, end - span.offset))
  return `${lineText}\n${' '.repeat(col)}^${'~'.repeat(width - 1)}`
}
