import { NginxConfError } from './errors.js'

export interface Token {
  text: string
  /** `;`, `{`, `}` outside quotes; everything else is a word. */
  kind: 'word' | ';' | '{' | '}'
  line: number
  /** A quoted word: never a special character, even when it reads `{`. */
  quoted: boolean
}

/** ngx_conf_read_token reads through a buffer of this many bytes: no word may fill it. */
const NGX_CONF_BUFFER = 4096

export interface Tokens {
  tokens: Token[]
  /** The line nginx names at the end of the file: one more than its line feeds. */
  eofLine: number
}

/**
 * nginx's ngx_conf_read_token: words split by blanks, `;` `{` `}` as separators, `#` starting a
 * comment only at the start of a word, "double" and 'single' quotes with \" \' \\ \t \r \n
 * escapes, and a backslash outside quotes keeping the next character.
 */
export function tokenize(src: string, file: string): Tokens {
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
      const from = i
      while (i < n && src[i] !== '\n') i++
      if (i - from >= NGX_CONF_BUFFER) throw tooLong(src, from, file, line)
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
      const from = i
      for (;;) {
        if (i >= n) throw new NginxConfError('unexpected end of file, expecting ";" or "}"', file, line)
        // The closing quote must come within the buffer nginx reads the word into.
        if (i - from >= NGX_CONF_BUFFER - 1) {
          if (src[i] === c) throw tooLong(src, from, file, start)
          throw new NginxConfError(`too long parameter, probably missing terminating "${c}" character`, file, line)
        }
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
    const from = i
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
    if (i - from >= NGX_CONF_BUFFER) throw tooLong(src, from, file, start)
    out.push({ text, kind: 'word', line: start, quoted: false })
  }
  return { tokens: out, eofLine: line }
}

/** nginx names a word too long for its buffer by its first ten bytes and the line it started on. */
function tooLong(src: string, from: number, file: string, line: number): NginxConfError {
  return new NginxConfError(`too long parameter "${src.slice(from, from + 10)}..." started`, file, line)
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
