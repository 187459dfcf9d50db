import { type Span, type VclSource, VclError } from './source.js'

export type TokenKind = 'id' | 'string' | 'number' | 'duration' | 'op' | 'eof'

export interface Token extends Span {
  readonly kind: TokenKind
  /** Identifier text, operator text, the string's contents or the number's digits. */
  readonly value: string
  /** For `duration`: the unit (ms, s, m, h, d, w, y). */
  readonly unit?: string
}

// Longest first, as VCC's lexer matches them (vcc_token.c).
const OPERATORS = ['&&', '||', '==', '!=', '<=', '>=', '!~', '+=', '-=', '*=', '/=', '{', '}', '(', ')', ';', ',', '.', '=', '<', '>', '~', '!', '+', '-', '*', '/']
const DURATION_UNITS = new Set(['ms', 's', 'm', 'h', 'd', 'w', 'y'])

const isIdStart = (c: string) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
const isDigit = (c: string) => c >= '0' && c <= '9'
// VCC identifiers may contain '.', '-' and '_' after the first letter (`req.http.X-Forwarded-For`).
const isIdChar = (c: string) => isIdStart(c) || isDigit(c) || c === '_' || c === '-' || c === '.'

/** Splits VCL text into tokens. Comments are `#`, `//` and `/* *\/`, as in varnishd. */
export function tokenize(source: VclSource): Token[] {
  const text = source.text
  const tokens: Token[] = []
  const fail = (problem: string, offset: number, length = 1): never => {
    throw new VclError(problem, { source, offset, length })
  }
  // A NUL ends the source for VCC (it reads a C string): a long string across it is unterminated.
  const firstNul = text.indexOf('\0')
  let i = 0
  while (i < text.length) {
    const c = text[i] as string
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++
      continue
    }
    if (c === '#' || (c === '/' && text[i + 1] === '/')) {
      while (i < text.length && text[i] !== '\n') i++
      continue
    }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2)
      if (end === -1) fail('Unterminated /* ... */ comment, starting at', i, 2)
      i = end + 2
      continue
    }
    if (c === '{' && text[i + 1] === '"') {
      const end = text.indexOf('"}', i + 2)
      if (end === -1 || (firstNul > i && firstNul < end)) fail('Unterminated long-string, starting at', i, 2)
      tokens.push({ kind: 'string', value: text.slice(i + 2, end), source, offset: i, length: end + 2 - i })
      i = end + 2
      continue
    }
    if (c === '"' && text.startsWith('"""', i)) {
      const end = text.indexOf('"""', i + 3)
      if (end === -1 || (firstNul > i && firstNul < end)) fail('Unterminated long-string, starting at', i, 3)
      tokens.push({ kind: 'string', value: text.slice(i + 3, end), source, offset: i, length: end + 3 - i })
      i = end + 3
      continue
    }
    if (c === '"') {
      // Plain VCL strings have no escapes and cannot span lines.
      let j = i + 1
      while (j < text.length && text[j] !== '"' && text[j] !== '\n' && text[j] !== '\0') j++
      if (text[j] !== '"') fail('Unterminated string, starting at', i)
      tokens.push({ kind: 'string', value: text.slice(i + 1, j), source, offset: i, length: j + 1 - i })
      i = j + 1
      continue
    }
    if (isDigit(c)) {
      let j = i
      while (j < text.length && isDigit(text[j] as string)) j++
      if (text[j] === '.' && isDigit(text[j + 1] ?? '')) {
        j++
        while (j < text.length && isDigit(text[j] as string)) j++
      }
      const digits = text.slice(i, j)
      // VCC reads the unit as a token of its own: `60 s` is `60s` (vcc_expr.c: vcc_Duration).
      let u = j
      while (text[u] === ' ' || text[u] === '\t') u++
      let k = u
      while (k < text.length && isIdStart(text[k] as string)) k++
      if (u !== j && (!DURATION_UNITS.has(text.slice(u, k)) || isIdChar(text[k] ?? ' '))) k = u = j
      const unit = text.slice(u, k)
      if (unit !== '') {
        if (!DURATION_UNITS.has(unit)) fail(`Unknown time unit '${unit}'.  Legal are 'ms', 's', 'm', 'h', 'd', 'w' and 'y'`, u, k - u)
        tokens.push({ kind: 'duration', value: digits, unit, source, offset: i, length: k - i })
      } else {
        tokens.push({ kind: 'number', value: digits, source, offset: i, length: j - i })
      }
      i = k
      continue
    }
    if (isIdStart(c)) {
      let j = i + 1
      while (j < text.length && isIdChar(text[j] as string)) j++
      // A trailing '.' belongs to the next token (never happens in valid VCL, keeps carets right).
      while (text[j - 1] === '.') j--
      tokens.push({ kind: 'id', value: text.slice(i, j), source, offset: i, length: j - i })
      i = j
      continue
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i))
    if (op === undefined) fail('Syntax error at', i)
    tokens.push({ kind: 'op', value: op as string, source, offset: i, length: (op as string).length })
    i += (op as string).length
  }
  tokens.push({ kind: 'eof', value: '', source, offset: text.length, length: 1 })
  return tokens
}

export function spanOf(t: Token): Span {
  return { source: t.source, offset: t.offset, length: t.length }
}
