import { type BoundedRegex, compileBoundedPcre, type MatchLimits } from '@edgestack/common'

/**
 * varnishd's regex bounds when no parameter says otherwise: pcre2_match_limit 10000, and no
 * depth limit because pcre2_jit_compilation is on by default and PCRE2's JIT ignores it.
 */
export const VARNISH_REGEX_LIMITS: MatchLimits = Object.freeze({ matchLimit: 10_000, depthLimit: Number.POSITIVE_INFINITY })

/** A VCL or ban pattern, compiled once at load with PCRE's meaning (common's pcre-to-js.ts). */
export function compilePcre(pattern: string): BoundedRegex {
  return compileBoundedPcre(pattern)
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
