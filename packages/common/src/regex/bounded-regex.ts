import { setFlagsFromString } from 'node:v8'
import { EdgeError } from '../errors.js'
import { type Node, parseRegex, RegexSyntaxError } from './parse.js'
import { pcreToJs, RegexTranslationError } from './pcre-to-js.js'
import { compileProgram, type Program, ProgramTooLargeError } from './program.js'
import { LimitExceeded, type MatchLimits, runProgram } from './vm.js'

export type { MatchLimits } from './vm.js'

/**
 * The run-time net under every pattern that runs on V8's own engine: after this many
 * backtracks in one exec, V8 finishes the match on its linear-time engine (same answer, no
 * blow-up). V8 reads the flags when a RegExp is created, and they are process-wide, so they are
 * set here, when the module that creates config regexes is loaded, in every process that loads
 * it (workers included), before any config pattern is compiled. See README "Bounded regexes".
 */
export const V8_BACKTRACKS_BEFORE_FALLBACK = 10_000
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks')
// Only makes the `l` flag known, with which a pattern is asked whether the linear engine can run it.
setFlagsFromString('--enable-experimental-regexp-engine')
setFlagsFromString(`--regexp-backtracks-before-fallback=${V8_BACKTRACKS_BEFORE_FALLBACK}`)

const WARM_UP = '/warm-up'

/** PCRE2's own defaults (pcre2_set_match_limit / pcre2_set_depth_limit): nginx sets neither. */
export const PCRE2_DEFAULT_LIMITS: MatchLimits = Object.freeze({ matchLimit: 10_000_000, depthLimit: 10_000_000 })

/**
 * A match that hit a bound: PCRE2_ERROR_MATCHLIMIT (-47) or PCRE2_ERROR_DEPTHLIMIT (-53), with
 * pcre2_get_error_message()'s words, which varnishd logs after "Regexp matching failed: ".
 */
export class RegexLimitError extends EdgeError {
  readonly pcre2Code: number

  constructor(kind: 'match' | 'depth') {
    super(
      kind === 'match' ? 'EDGE_ERR_REGEX_MATCH_LIMIT' : 'EDGE_ERR_REGEX_DEPTH_LIMIT',
      kind === 'match' ? 'match limit exceeded' : 'matching depth limit exceeded',
    )
    this.pcre2Code = kind === 'match' ? -47 : -53
  }
}

/** A pattern refused at load: PCRE syntax we cannot keep the meaning of, or one too large. */
export class RegexCompileError extends EdgeError {
  constructor(message: string) {
    super('EDGE_ERR_REGEX_COMPILE', message)
  }
}

/**
 * A PCRE pattern from a config file, compiled once at load, whose every match is bounded.
 *
 * Patterns whose shape can backtrack super-linearly (a quantifier over a sub-pattern that itself
 * repeats or alternates, as in `(a+)+` or `(a|ab)*`) and patterns V8's linear engine cannot run
 * (back-references, lookarounds) run on a counting backtracker (vm.ts) that stops at
 * `matchLimit` choice points and `depthLimit` pending ones, failing the match the way PCRE2
 * does. Every other pattern runs on V8's own engine, which is what the common case needs (no
 * cost), with V8's linear-time fallback as the bound for polynomial cases (`.*.*x`).
 */
export class BoundedRegex {
  /** Why the pattern runs on the counting engine, or undefined when it runs on V8's. */
  readonly risk: string | undefined
  readonly groupCount: number
  readonly groupNames: readonly string[]
  readonly #native: RegExp
  readonly #global: RegExp
  readonly #program: Program | undefined

  constructor(
    readonly pattern: string,
    readonly source: string,
    readonly flags: string,
  ) {
    this.#native = new RegExp(source, flags)
    this.#global = new RegExp(source, `${flags}g`)
    // V8 compiles a RegExp at its first exec and again to machine code at the next (tier-up):
    // both happen here, at load, so no request pays for a large pattern's compilation.
    for (const re of [this.#native, this.#global, this.#native, this.#global]) {
      re.lastIndex = 0
      re.exec(WARM_UP)
    }
    let parsed: ReturnType<typeof parseRegex>
    try {
      parsed = parseRegex(source)
    } catch (err) {
      if (err instanceof RegexSyntaxError) throw new RegexCompileError(err.message)
      throw err
    }
    this.groupCount = parsed.groups
    this.groupNames = [...parsed.names.keys()]
    this.risk = superLinearRisk(parsed.node) ?? withoutLinearFallback(parsed.node, source, flags)
    if (this.risk !== undefined) {
      try {
        this.#program = compileProgram(parsed, { ignoreCase: flags.includes('i'), multiline: flags.includes('m'), dotAll: flags.includes('s') })
      } catch (err) {
        if (err instanceof ProgramTooLargeError) throw new RegexCompileError(err.message)
        throw err
      }
    }
  }

  /** The first match at or after `from`, shaped as RegExp#exec's; throws RegexLimitError at a bound. */
  exec(input: string, limits: MatchLimits, from = 0): RegExpExecArray | null {
    const prog = this.#program
    if (!prog) {
      if (from === 0) return this.#native.exec(input)
      this.#global.lastIndex = from
      return this.#global.exec(input)
    }
    const slots = run(prog, input, from, limits)
    return slots ? this.#toExecArray(slots, input) : null
  }

  test(input: string, limits: MatchLimits): boolean {
    const prog = this.#program
    if (!prog) return this.#native.test(input)
    return run(prog, input, 0, limits) !== null
  }

  /**
   * regsub / regsuball: `replace(match, groups)` builds each replacement. Each exec is one
   * pcre2_match() with its own budget, as varnishd's VRT_regsub loops over VRE_match.
   */
  replace(input: string, limits: MatchLimits, all: boolean, replace: (m: string, groups: readonly (string | undefined)[]) => string): string {
    if (!this.#program) {
      const n = this.groupCount
      const fn = (m: string, ...rest: unknown[]) => replace(m, rest.slice(0, n) as (string | undefined)[])
      if (!all) return input.replace(this.#native, fn)
      this.#global.lastIndex = 0
      return input.replace(this.#global, fn)
    }
    let out = ''
    let at = 0
    let from = 0
    while (from <= input.length) {
      const m = this.exec(input, limits, from)
      if (!m) break
      out += input.slice(at, m.index) + replace(m[0], m.slice(1))
      at = m.index + m[0].length
      from = m[0].length === 0 ? at + 1 : at
      if (!all) break
    }
    return out + input.slice(at)
  }

  #toExecArray(slots: Int32Array, input: string): RegExpExecArray {
    const out: (string | undefined)[] = []
    for (let g = 0; g <= this.groupCount; g++) {
      const s = slots[g * 2] as number
      const e = slots[g * 2 + 1] as number
      out.push(s >= 0 && e >= 0 ? input.slice(s, e) : undefined)
    }
    const arr = out as unknown as RegExpExecArray
    arr.index = slots[0] as number
    arr.input = input
    if (this.groupNames.length > 0) {
      const groups: Record<string, string | undefined> = {}
      this.#program?.names.forEach((idx, name) => {
        groups[name] = out[idx]
      })
      arr.groups = groups as Record<string, string>
    }
    return arr
  }
}

function run(prog: Program, input: string, from: number, limits: MatchLimits): Int32Array | null {
  try {
    return runProgram(prog, input, from, limits)
  } catch (err) {
    if (err instanceof LimitExceeded) throw new RegexLimitError(err.kind)
    throw err
  }
}

/** Compiles a PCRE pattern (PCRE spellings translated, see pcre-to-js.ts); throws RegexCompileError. */
export function compileBoundedPcre(pattern: string, caseless = false): BoundedRegex {
  let js: { source: string; flags: string }
  try {
    js = pcreToJs(pattern, caseless)
  } catch (err) {
    if (err instanceof RegexTranslationError) throw new RegexCompileError(err.message)
    throw err
  }
  return new BoundedRegex(pattern, js.source, js.flags)
}

/**
 * V8's linear engine, hence its fallback, does not take every pattern: not caseless ones, not
 * counted repeats past a small bound. Such a pattern with any quantifier gets no net on V8's
 * engine (`(?i)a.*b.*c` is polynomial there), so it runs on the counting engine instead.
 */
function withoutLinearFallback(root: Node, source: string, flags: string): string | undefined {
  if (!hasQuantifier(root)) return undefined
  try {
    new RegExp(source, `${flags}l`)
    return undefined
  } catch {
    return flags.includes('i') ? 'caseless with a quantifier' : 'counted repeat too large for the linear-time engine'
  }
}

function hasQuantifier(root: Node): boolean {
  const todo: Node[] = [root]
  while (todo.length > 0) {
    const n = todo.pop() as Node
    if (n.t === 'repeat') return true
    if (n.t === 'seq') todo.push(...n.items)
    else if (n.t === 'alt') todo.push(...n.alts)
    else if (n.t === 'group' || n.t === 'look') todo.push(n.body)
  }
  return false
}

/**
 * The load-time check: why a pattern may backtrack super-linearly on a backtracking engine, or
 * undefined. Conservative by shape, not by proof: a repeated sub-pattern (max > 1) that holds a
 * repeat or an alternation can match one text in many ways, which is what makes `(a+)+$` and
 * `(a|aa)*$` exponential. Back-references and lookarounds are counted too: V8's linear engine
 * cannot run them, so only the counting engine bounds them.
 */
export function superLinearRisk(root: Node): string | undefined {
  const todo: { n: Node; underRepeat: boolean }[] = [{ n: root, underRepeat: false }]
  while (todo.length > 0) {
    const { n, underRepeat } = todo.pop() as { n: Node; underRepeat: boolean }
    switch (n.t) {
      case 'backref':
        return 'back-reference'
      case 'look':
        return 'lookaround'
      case 'alt':
        if (underRepeat) return 'alternation under a quantifier'
        for (const a of n.alts) todo.push({ n: a, underRepeat })
        break
      case 'seq':
        for (const i of n.items) todo.push({ n: i, underRepeat })
        break
      case 'group':
        todo.push({ n: n.body, underRepeat })
        break
      case 'repeat': {
        const repeats = n.max > 1
        if (underRepeat && repeats) return 'nested quantifier'
        todo.push({ n: n.body, underRepeat: underRepeat || repeats })
        break
      }
    }
  }
  return undefined
}
