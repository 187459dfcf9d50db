import { NginxConfError } from './errors.js'

export interface Token {
  text: string
  /** `;`, `{`, `}` outside quotes; everything else is a word. */
  kind: 'word' | ';' | '{' | '}'
  line: number
  /** A quoted word: never a special character, even when it reads `{`. */
  quoted: boolean
}

/**
 * nginx's ngx_conf_read_token: words split by blanks, `;` `{` `}` as separators, `#` starting a
 * comment only at the start of a word, "double" and 'single' quotes with \" \' \\ \t \r \n
 * escapes, and a backslash outside quotes keeping the next character.
 */
export function tokenize(src: string, file: string): Token[] {
  const out: Token[] = []
  let line = 1
  let i = 0
  const n = src.length
  while (i < n) {
    const c = src[i] as string
    if (c === '\n') {
      line++
      i++
      continue
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++
      continue
    }
    if (c === '#') {
      while (i < n && src[i] !== '\n') i++
      continue
    }
    if (c === ';' || c === '{' || c === '}') {
      out.push({ text: c, kind: c, line, quoted: false })
      i++
      continue
    }
    const start = line
    if (c === '"' || c === "'") {
      let text = ''
      i++
      for (;;) {
        if (i >= n) throw new NginxConfError('unexpected end of file, expecting ";" or "}"', file, line)
        const d = src[i] as string
        if (d === '\\' && i + 1 < n) {
          const e = src[i + 1] as string
          text += unescapeChar(e)
          i += 2
          continue
        }
        if (d === c) {
          i++
          break
        }
        if (d === '\n') line++
        text += d
        i++
      }
      const next = src[i]
      // ngx_conf_read_token lets `)` follow a closing quote: `if ($a = "b")`.
      if (next !== undefined && next !== ')' && !/[\s;{}]/.test(next)) {
        throw new NginxConfError(`unexpected "${next}"`, file, line)
      }
      out.push({ text, kind: 'word', line: start, quoted: true })
      continue
    }
    let text = ''
    while (i < n) {
      const d = src[i] as string
      if (d === ' ' || d === '\t' || d === '\r' || d === '\n' || d === ';') break
      if (d === '{' && !text.endsWith('$')) break
      // `}` ends a word only outside a ${var} reference, as nginx's variable syntax allows.
      if (d === '}' && !(text.includes('${') && text.lastIndexOf('${') > text.lastIndexOf('}'))) break
      if (d === '\\' && i + 1 < n) {
        text += unescapeChar(src[i + 1] as string)
        i += 2
        continue
      }
      text += d
      i++
    }
    out.push({ text, kind: 'word', line: start, quoted: false })
  }
  return out
}

/** The escapes nginx undoes when it copies a word; any other pair is kept (regexes need `\.`). */
function unescapeChar(e: string): string {
  switch (e) {
    case '"':
    case "'":
    case '\\':
      return e
    case 't':
      return '\t'
    case 'r':
      return '\r'
    case 'n':
      return '\n'
    default:
      return `\\${e}`
  }
}
