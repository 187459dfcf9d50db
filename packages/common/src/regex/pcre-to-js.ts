/**
 * varnishd and nginx compile their patterns with PCRE2; JavaScript's RegExp differs in a few
 * spellings. This translates what VCL files and nginx.conf use in practice, once at load, and
 * rejects what it cannot translate faithfully (rather than silently matching something else).
 */

const POSIX_CLASSES: Record<string, string> = {
  alpha: 'A-Za-z',
  digit: '0-9',
  alnum: 'A-Za-z0-9',
  upper: 'A-Z',
  lower: 'a-z',
  space: ' \\t\\n\\r\\f\\v',
  xdigit: '0-9A-Fa-f',
  punct: '!-\\/:-@\\[-`{-~',
  word: '\\w',
}

export class RegexTranslationError extends Error {}

/** The JavaScript source and flags equivalent to a PCRE pattern, or throws with PCRE-like text. */
export function pcreToJs(pattern: string, caseless = false): { source: string; flags: string } {
  let flags = caseless ? 'i' : ''
  let body = pattern
  // Leading option settings apply to the whole pattern: (?i), (?s), (?m), (?is) ...
  for (;;) {
    const m = /^\(\?([ism]+)\)/.exec(body)
    if (!m) break
    for (const f of m[1] as string) if (!flags.includes(f)) flags += f
    body = body.slice(m[0].length)
  }
  const source = translate(body, flags.includes('i'), flags.includes('m'))
  try {
    // V8 is the judge of the translated syntax; its message is the one users see.
    new RegExp(source, flags)
  } catch (err) {
    throw new RegexTranslationError((err as Error).message.replace(/^Invalid regular expression: /, ''))
  }
  return { source, flags }
}

/** PCRE2's PARENS_NEST_LIMIT (250, as Debian builds it): deeper nesting is a compile error. */
const PARENS_NEST_LIMIT = 250

function translate(p: string, caseless: boolean, multiline: boolean): string {
  let out = ''
  let i = 0
  let inClass = false
  // Stack of case-insensitivity for open groups, to undo `(?i:...)` at its ')'.
  const groups: boolean[] = []
  let ci = caseless
  const base = caseless
  while (i < p.length) {
    const c = p[i] as string
    if (c === '\\') {
      const n = p[i + 1] ?? ''
      // \A and \z are the subject's ends even in multiline mode, where ^ and $ are lines'.
      if (n === 'A') out += multiline ? '(?<![\\s\\S])' : '^'
      else if (n === 'Z' || n === 'z') out += multiline ? '(?![\\s\\S])' : '$'
      else if (n === 'E') {
        // A stray \E (no \Q open) is ignored by PCRE.
      } else if (n === 'e') out += '\\x1b'
      else if (n === 'h') out += inClass ? ' \\t\\xa0' : '[ \\t\\xa0]'
      else if (n === 'x' && p[i + 2] === '{') {
        // \x{HHHH}: PCRE's braced code point (the BMP is what a non-unicode pattern can name).
        const end = p.indexOf('}', i)
        const hex = end === -1 ? '' : p.slice(i + 3, end)
        if (!/^[0-9A-Fa-f]{1,4}$/.test(hex)) throw new RegexTranslationError(`character code point value in \\x{} is too large or invalid`)
        out += `\\u${hex.padStart(4, '0')}`
        i = end + 1
        continue
      } else if (n === 'Q') {
        const end = p.indexOf('\\E', i + 2)
        const lit = p.slice(i + 2, end === -1 ? p.length : end)
        out += lit.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')
        i = end === -1 ? p.length : end + 2
        continue
      } else out += `\\${n}`
      i += 2
      continue
    }
    if (inClass) {
      if (c === '[' && p[i + 1] === ':') {
        const end = p.indexOf(':]', i + 2)
        const name = end === -1 ? '' : p.slice(i + 2, end)
        const cls = POSIX_CLASSES[name]
        if (cls === undefined) throw new RegexTranslationError(`unknown POSIX class name [:${name}:]`)
        out += cls
        i = end + 2
        continue
      }
      if (c === ']') inClass = false
      const to = p[i + 2] ?? ''
      if (ci !== base && p[i + 1] === '-' && /[a-z]/i.test(c) && /[a-z]/i.test(to) && c <= to) {
        // A letter range under (?i:...): the range in both cases (`[a-c]` -> `a-cA-C`), never
        // `aA-cC`, whose middle `A-c` would take `[`, `_` and the rest between.
        out += `${c.toLowerCase()}-${to.toLowerCase()}${c.toUpperCase()}-${to.toUpperCase()}`
        i += 3
        continue
      }
      out += ci !== base && /[A-Za-z]/.test(c) ? bothCases(c) : c
      i++
      continue
    }
    if (c === '[') {
      inClass = true
      out += c
      i++
      if (p[i] === '^') {
        out += '^'
        i++
      }
      if (p[i] === ']') {
        out += '\\]'
        i++
      }
      continue
    }
    if (c === '(') {
      if (groups.length >= PARENS_NEST_LIMIT && !p.startsWith('(?#', i)) throw new RegexTranslationError('parentheses are too deeply nested')
      if (p.startsWith('(?#', i)) {
        // A comment group: gone, as PCRE skips it.
        const end = p.indexOf(')', i)
        if (end === -1) throw new RegexTranslationError('missing ) after (?# comment')
        i = end + 1
        continue
      }
      const ref = /^\(\?P=([A-Za-z_]\w*)\)/.exec(p.slice(i, i + 40))
      if (ref) {
        out += `\\k<${ref[1]}>`
        i += ref[0].length
        continue
      }
      if (p.startsWith('(?P<', i)) {
        out += '(?<'
        groups.push(ci)
        i += 4
        continue
      }
      const m = /^\(\?([ism]*)(?:-([ism]+))?:/.exec(p.slice(i))
      if (m && (m[1] !== '' || m[2] !== undefined)) {
        if ((m[1] as string).replace('i', '') !== '' || (m[2] ?? '').replace('i', '') !== '') {
          throw new RegexTranslationError(`inline option group ${m[0]} is not supported`)
        }
        groups.push(ci)
        ci = (m[1] as string).includes('i') ? true : m[2] ? false : ci
        if (ci !== base && !base) out += '(?:'
        else if (ci !== base) throw new RegexTranslationError('(?-i:...) inside a caseless pattern is not supported')
        else out += '(?:'
        i += m[0].length
        continue
      }
      if (p.startsWith('(?>', i) || /^\(\?[a-zA-Z]/.test(p.slice(i, i + 3))) {
        throw new RegexTranslationError(`group ${p.slice(i, i + 3)} is not supported`)
      }
      groups.push(ci)
      out += c
      i++
      continue
    }
    if (c === ')') {
      ci = groups.pop() ?? base
      out += c
      i++
      continue
    }
    if ((c === '+' || c === '*' || c === '?' || c === '}') && p[i + 1] === '+') {
      throw new RegexTranslationError('possessive quantifiers are not supported')
    }
    out += ci !== base && /[A-Za-z]/.test(c) ? `[${bothCases(c)}]` : c
    i++
  }
  return out
}

function bothCases(c: string): string {
  const l = c.toLowerCase()
  const u = c.toUpperCase()
  return l === u ? c : `${l}${u}`
}
