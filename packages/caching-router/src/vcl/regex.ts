/**
 * varnish compiles `~` patterns with PCRE2; JavaScript's RegExp differs in a few spellings.
 * This translates what VCL files use in practice, once at load, and rejects what it cannot
 * translate faithfully (rather than silently matching something else).
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

/** Returns a compiled RegExp equivalent to the PCRE pattern, or throws with PCRE-like text. */
export function compilePcre(pattern: string): RegExp {
  let flags = ''
  let body = pattern
  // Leading option settings apply to the whole pattern: (?i), (?s), (?m), (?is) ...
  for (;;) {
    const m = /^\(\?([ism]+)\)/.exec(body)
    if (!m) break
    for (const f of m[1] as string) if (!flags.includes(f)) flags += f
    body = body.slice(m[0].length)
  }
  const out = translate(body, flags.includes('i'))
  try {
    return new RegExp(out, flags)
  } catch (err) {
    throw new RegexTranslationError((err as Error).message.replace(/^Invalid regular expression: /, ''))
  }
}

function translate(p: string, caseless: boolean): string {
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
      if (n === 'A') out += '^'
      else if (n === 'Z' || n === 'z') out += '$'
      else if (n === 'Q') {
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

/**
 * A regsub replacement: PCRE's `\0`..`\9` refer to groups, everything else is literal (so a `$`
 * in VCL must not become a JS back-reference). Parsed once into parts.
 */
export function compileReplacement(template: string): (m: string, groups: readonly (string | undefined)[]) => string {
  const parts: (string | number)[] = []
  let lit = ''
  for (let i = 0; i < template.length; i++) {
    const c = template[i] as string
    const n = template[i + 1]
    if (c === '\\' && n !== undefined && n >= '0' && n <= '9') {
      if (lit) parts.push(lit)
      lit = ''
      parts.push(Number(n))
      i++
    } else if (c === '\\' && n === '\\') {
      lit += '\\'
      i++
    } else lit += c
  }
  if (lit) parts.push(lit)
  return (m, groups) => {
    let s = ''
    for (const part of parts) s += typeof part === 'string' ? part : part === 0 ? m : (groups[part - 1] ?? '')
    return s
  }
}
