/** A config string with its `$var` / `${var}` references split out once, at load. */
export type Template = readonly (string | { v: string })[]

/** What a template reads at request time: named variables and regex captures ($1..$9). */
export interface VariableSource {
  get(name: string): string
}

/** Splits `text` into literal parts and variable names, as ngx_http_script_compile does. */
export function compileTemplate(text: string): Template {
  const out: (string | { v: string })[] = []
  let lit = ''
  let i = 0
  while (i < text.length) {
    const c = text[i] as string
    if (c !== '$') {
      lit += c
      i++
      continue
    }
    let name = ''
    let j = i + 1
    if (text[j] === '{') {
      const close = text.indexOf('}', j)
      // nginx's words: the name as far as it goes, without the `${`.
      if (close < 0) throw new Error(`the closing bracket in "${text.slice(j + 1)}" variable is missing`)
      name = text.slice(j + 1, close)
      j = close + 1
    } else if (/[0-9]/.test(text[j] ?? '')) {
      name = text[j] as string
      j++
    } else {
      while (j < text.length && /[A-Za-z0-9_]/.test(text[j] as string)) {
        name += text[j]
        j++
      }
    }
    if (name === '') throw new Error('invalid variable name')
    if (lit) out.push(lit)
    lit = ''
    out.push({ v: name })
    i = j
  }
  if (lit) out.push(lit)
  return Object.freeze(out)
}

export function isStatic(t: Template): boolean {
  return t.every((p) => typeof p === 'string')
}

export function literal(t: Template): string {
  return t.map((p) => (typeof p === 'string' ? p : `$${p.v}`)).join('')
}

export function expand(t: Template, vars: VariableSource): string {
  if (t.length === 1 && typeof t[0] === 'string') return t[0]
  let s = ''
  for (const p of t) s += typeof p === 'string' ? p : vars.get(p.v)
  return s
}
