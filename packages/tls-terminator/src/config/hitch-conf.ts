import { readFile } from 'node:fs/promises'
import { ConfigError, type SourcePosition } from '@edgestack/common'

/**
 * hitch.conf's syntax (hitch.conf(5); hitch's cfg_lex.l and cfg_parser.y): `key = value` one a
 * line, `#` comments to the end of the line, values that are a "quoted string", a bare token
 * (a number, on/off, or the words of `tls-protos`), or a `{ ... }` block of the same (a
 * `frontend` or a `pem-file`). The meaning of each key is hitch-options.ts's job.
 */

export type HitchValue =
  | { readonly kind: 'string'; readonly text: string }
  | { readonly kind: 'words'; readonly words: readonly string[] }
  | { readonly kind: 'block'; readonly settings: readonly HitchSetting[] }

export interface HitchSetting {
  readonly key: string
  readonly value: HitchValue
  /** The line in the file; undefined for a command-line flag. */
  readonly position: SourcePosition | undefined
  /** The line as written, for hitch's "syntax error: '...'" message. */
  readonly text: string
}

interface Token {
  kind: 'word' | 'string' | '=' | '{' | '}' | 'eol'
  text: string
  line: number
}

/** hitch has no include; a file this large is not a configuration. */
const MAX_FILE_BYTES = 1 << 20

export async function readHitchConf(file: string): Promise<HitchSetting[]> {
  let text: string
  try {
    const buf = await readFile(file)
    if (buf.length > MAX_FILE_BYTES) throw Object.assign(new Error('larger than 1 MiB'), { code: 'EFBIG' })
    text = buf.toString('utf8')
  } catch (err) {
    throw new ConfigError(`cannot read configuration file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  return parseHitchConf(text, file)
}

export function parseHitchConf(text: string, file: string): HitchSetting[] {
  const lines = text.split('\n')
  const tokens = tokenize(lines, file)
  let i = 0
  const peek = () => tokens[i] as Token
  const syntaxError = (line: number): never => {
    // hitch's words: `Parsing error in line N: syntax error: 'LINE'`.
    throw new ConfigError(`syntax error: '${(lines[line - 1] ?? '').trim()}'`, { position: { file, line } })
  }
  const settings = (inBlock: boolean): HitchSetting[] => {
    const out: HitchSetting[] = []
    for (;;) {
      const t = peek()
      if (t.kind === 'eol') {
        i++
        if (t.text === 'end') {
          if (inBlock) syntaxError(t.line)
          return out
        }
        continue
      }
      if (t.kind === '}') {
        if (!inBlock) syntaxError(t.line)
        i++
        return out
      }
      if (t.kind !== 'word') syntaxError(t.line)
      const line = t.line
      i++
      if (peek().kind !== '=') syntaxError(line)
      i++
      let value: HitchValue
      const v = peek()
      if (v.kind === '{') {
        i++
        value = { kind: 'block', settings: settings(true) }
      } else if (v.kind === 'string') {
        i++
        value = { kind: 'string', text: v.text }
      } else if (v.kind === 'word') {
        const words: string[] = []
        while (peek().kind === 'word') words.push((tokens[i++] as Token).text)
        value = { kind: 'words', words }
      } else {
        return syntaxError(line)
      }
      const end = peek()
      if (end.kind !== 'eol' && !(inBlock && end.kind === '}')) syntaxError(line)
      out.push({ key: t.text, value, position: { file, line }, text: (lines[line - 1] ?? '').trim() })
    }
  }
  return settings(false)
}

/** A bare token: no space, quote, `=`, braces or comment sign (hitch's lexer is as narrow). */
const WORD = /^[^\s"={}#]+/

function tokenize(lines: string[], file: string): Token[] {
  const tokens: Token[] = []
  for (const [n, raw] of lines.entries()) {
    const line = n + 1
    let rest = raw
    for (;;) {
      rest = rest.replace(/^\s+/, '')
      if (rest === '' || rest.startsWith('#')) break
      const c = rest[0] as string
      if (c === '=' || c === '{' || c === '}') {
        tokens.push({ kind: c, text: c, line })
        rest = rest.slice(1)
      } else if (c === '"') {
        const end = rest.indexOf('"', 1)
        if (end === -1) throw new ConfigError(`syntax error: '${raw.trim()}' (unterminated string)`, { position: { file, line } })
        tokens.push({ kind: 'string', text: rest.slice(1, end), line })
        rest = rest.slice(end + 1)
      } else {
        const m = WORD.exec(rest) as RegExpExecArray
        tokens.push({ kind: 'word', text: m[0], line })
        rest = rest.slice(m[0].length)
      }
    }
    tokens.push({ kind: 'eol', text: '', line })
  }
  tokens.push({ kind: 'eol', text: 'end', line: lines.length })
  return tokens
}
