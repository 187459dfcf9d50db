import type { CharSet, Node, Parsed } from './parse.js'

/**
 * The parsed tree as a flat program for the counting backtracker (vm.ts), in the manner of
 * PCRE2's interpreter: choice points are explicit, so every one of them can be counted against
 * `match_limit` and the pending ones against `depth_limit`.
 */
export type Inst =
  | { op: 'char'; c: number }
  | { op: 'set'; test: (c: number) => boolean }
  | { op: 'bol' }
  | { op: 'eol' }
  | { op: 'wordb'; negate: boolean }
  | { op: 'split'; x: number; y: number }
  | { op: 'jmp'; x: number }
  | { op: 'save'; slot: number }
  | { op: 'reset'; from: number; to: number }
  | { op: 'mark'; reg: number }
  | { op: 'progress'; reg: number }
  | { op: 'backref'; index: number }
  /** `maxLength`: the longest text the body can match (Infinity if unbounded), where a lookbehind starts trying. */
  | { op: 'look'; start: number; behind: boolean; negate: boolean; maxLength: number }
  /** A repeat of one character test: one choice point for the whole run, as PCRE2's OP_STAR. */
  | { op: 'star'; test: (c: number) => boolean; min: number; max: number; greedy: boolean }
  | { op: 'match' }

export interface Program {
  insts: Inst[]
  slots: number
  regs: number
  /** The pattern starts with `^` (and is not multiline): only one start position to try. */
  anchored: boolean
  /**
   * What the first character of any match must be, when the pattern says: start positions
   * failing it are skipped uncounted, as PCRE2's start-of-match optimization skips them.
   */
  first: ((c: number) => boolean) | undefined
  multiline: boolean
  ignoreCase: boolean
  names: ReadonlyMap<string, number>
}

export interface Flags {
  ignoreCase: boolean
  multiline: boolean
  dotAll: boolean
}

/** PCRE2 refuses compiled patterns over 64 KiB ("regular expression is too large"); so do we, counted in instructions. */
export const MAX_INSTRUCTIONS = 65_536

export class ProgramTooLargeError extends Error {}

export function compileProgram(parsed: Parsed, flags: Flags): Program {
  const insts: Inst[] = []
  let regs = 0
  const emit = (i: Inst): number => {
    if (insts.length >= MAX_INSTRUCTIONS) throw new ProgramTooLargeError('regular expression is too large')
    insts.push(i)
    return insts.length - 1
  }
  const looks: { at: number; body: Node }[] = []

  const gen = (n: Node): void => {
    switch (n.t) {
      case 'char':
        if (flags.ignoreCase && (fold(n.c) !== n.c || lower(n.c) !== n.c)) emit({ op: 'set', test: charTest(n, flags) })
        else emit({ op: 'char', c: n.c })
        return
      case 'any':
      case 'class':
        emit({ op: 'set', test: charTest(n, flags) })
        return
      case 'bol':
        emit({ op: 'bol' })
        return
      case 'eol':
        emit({ op: 'eol' })
        return
      case 'wordb':
        emit({ op: 'wordb', negate: n.negate })
        return
      case 'backref':
        emit({ op: 'backref', index: n.index })
        return
      case 'seq':
        for (const item of n.items) gen(item)
        return
      case 'alt': {
        const jumps: Inst[] = []
        n.alts.forEach((a, k) => {
          if (k < n.alts.length - 1) {
            const split = { op: 'split' as const, x: 0, y: 0 }
            emit(split)
            split.x = insts.length
            gen(a)
            const j = { op: 'jmp' as const, x: 0 }
            emit(j)
            jumps.push(j)
            split.y = insts.length
          } else gen(a)
        })
        for (const j of jumps) (j as { x: number }).x = insts.length
        return
      }
      case 'group':
        if (n.index === undefined) {
          gen(n.body)
          return
        }
        emit({ op: 'save', slot: n.index * 2 })
        gen(n.body)
        emit({ op: 'save', slot: n.index * 2 + 1 })
        return
      case 'look': {
        const at = emit({ op: 'look', start: -1, behind: n.behind, negate: n.negate, maxLength: maxLength(n.body) })
        looks.push({ at, body: n.body })
        return
      }
      case 'repeat':
        repeat(n)
        return
    }
  }

  const repeat = (n: Extract<Node, { t: 'repeat' }>): void => {
    const b = n.body
    if (b.t === 'char' || b.t === 'any' || b.t === 'class') {
      emit({ op: 'star', test: charTest(b, flags), min: n.min, max: n.max, greedy: n.greedy })
      return
    }
    // ECMAScript RepeatMatcher: captures inside the body are cleared at each iteration, and an
    // iteration past the minimum that matched the empty string fails (no endless empty loop).
    const [from, to] = captureRange(b)
    const iteration = () => {
      if (to > from) emit({ op: 'reset', from: from * 2, to: to * 2 })
      gen(b)
    }
    for (let k = 0; k < n.min; k++) iteration()
    if (n.max === n.min) return
    const empty = nullable(b)
    const reg = empty ? regs++ : -1
    const optional = (loop: boolean) => {
      const split = { op: 'split' as const, x: 0, y: 0 }
      const at = emit(split)
      const body = insts.length
      if (empty) emit({ op: 'mark', reg })
      iteration()
      if (empty) emit({ op: 'progress', reg })
      if (loop) emit({ op: 'jmp', x: at })
      return { split, body }
    }
    if (n.max === Number.POSITIVE_INFINITY) {
      const { split, body } = optional(true)
      split.x = n.greedy ? body : insts.length
      split.y = n.greedy ? insts.length : body
      return
    }
    const pending: { split: { x: number; y: number }; body: number }[] = []
    for (let k = n.min; k < n.max; k++) pending.push(optional(false))
    for (const { split, body } of pending) {
      split.x = n.greedy ? body : insts.length
      split.y = n.greedy ? insts.length : body
    }
  }

  gen(parsed.node)
  emit({ op: 'match' })
  // Lookaround bodies are sub-programs after the main one, each ending in its own `match`.
  for (let k = 0; k < looks.length; k++) {
    const { at, body } = looks[k] as { at: number; body: Node }
    ;(insts[at] as { start: number }).start = insts.length
    gen(body)
    emit({ op: 'match' })
  }
  const first = firstItem(parsed.node)
  const starts = firstChars(parsed.node, flags)
  const firstTest = starts === undefined || starts.nullable ? undefined : anyOf(starts.tests)
  return { insts, slots: (parsed.groups + 1) * 2, regs, anchored: first?.t === 'bol' && !flags.multiline, first: firstTest, multiline: flags.multiline, ignoreCase: flags.ignoreCase, names: parsed.names }
}

function firstItem(n: Node): Node | undefined {
  let cur: Node | undefined = n
  for (let k = 0; k < 1000 && cur !== undefined; k++) {
    const next: Node | undefined = cur.t === 'seq' ? cur.items[0] : cur.t === 'group' && cur.index === undefined ? cur.body : undefined
    if (next === undefined) break
    cur = next
  }
  return cur
}

interface FirstChars {
  /** Tests of which one must pass on a match's first character... */
  tests: ((c: number) => boolean)[]
  /** ...unless the sub-pattern can match the empty string. */
  nullable: boolean
}

/**
 * PCRE2's start bitmap: the characters a match can begin with, so that start positions where
 * none can be skipped without a step. Undefined when the pattern does not say (a lookaround,
 * a back-reference, a line anchor in multiline mode).
 */
function firstChars(n: Node, flags: Flags, depth = 0): FirstChars | undefined {
  if (depth > 300) return undefined
  switch (n.t) {
    case 'char':
    case 'any':
    case 'class':
      return { tests: [charTest(n, flags)], nullable: false }
    case 'wordb':
      return { tests: [], nullable: true }
    case 'bol':
    case 'eol':
      return flags.multiline ? undefined : { tests: [], nullable: true }
    case 'group':
      return firstChars(n.body, flags, depth + 1)
    case 'repeat': {
      if (n.max === 0) return { tests: [], nullable: true }
      const body = firstChars(n.body, flags, depth + 1)
      return body && { tests: body.tests, nullable: body.nullable || n.min === 0 }
    }
    case 'alt': {
      const tests: ((c: number) => boolean)[] = []
      let empty = false
      for (const a of n.alts) {
        const f = firstChars(a, flags, depth + 1)
        if (!f) return undefined
        tests.push(...f.tests)
        empty ||= f.nullable
      }
      return { tests, nullable: empty }
    }
    case 'seq': {
      const tests: ((c: number) => boolean)[] = []
      for (const item of n.items) {
        const f = firstChars(item, flags, depth + 1)
        if (!f) return undefined
        tests.push(...f.tests)
        if (!f.nullable) return { tests, nullable: false }
      }
      return { tests, nullable: true }
    }
    default:
      return undefined
  }
}

function anyOf(tests: ((c: number) => boolean)[]): (c: number) => boolean {
  if (tests.length === 1) return tests[0] as (c: number) => boolean
  return (c) => {
    for (const t of tests) if (t(c)) return true
    return false
  }
}

/** The capture groups a sub-tree holds, as [first, last + 1). */
function captureRange(n: Node): [number, number] {
  let lo = Number.POSITIVE_INFINITY
  let hi = -1
  const todo: Node[] = [n]
  while (todo.length > 0) {
    const c = todo.pop() as Node
    if (c.t === 'group' && c.index !== undefined) {
      lo = Math.min(lo, c.index)
      hi = Math.max(hi, c.index)
    }
    if (c.t === 'seq') todo.push(...c.items)
    else if (c.t === 'alt') todo.push(...c.alts)
    else if (c.t === 'group' || c.t === 'look' || c.t === 'repeat') todo.push(c.body)
  }
  return hi < 0 ? [0, 0] : [lo, hi + 1]
}

/** The longest text a sub-pattern can match; Infinity when unbounded (or a back-reference). */
function maxLength(n: Node): number {
  switch (n.t) {
    case 'char':
    case 'any':
    case 'class':
      return 1
    case 'seq': {
      let sum = 0
      for (const i of n.items) sum += maxLength(i)
      return sum
    }
    case 'alt': {
      let most = 0
      for (const a of n.alts) most = Math.max(most, maxLength(a))
      return most
    }
    case 'group':
      return maxLength(n.body)
    case 'repeat':
      return n.max === 0 ? 0 : n.max * maxLength(n.body)
    case 'backref':
      return Number.POSITIVE_INFINITY
    default:
      return 0
  }
}

export function nullable(n: Node): boolean {
  switch (n.t) {
    case 'char':
    case 'any':
    case 'class':
      return false
    case 'seq':
      return n.items.every((i) => nullable(i))
    case 'alt':
      return n.alts.some((a) => nullable(a))
    case 'group':
      return nullable(n.body)
    case 'repeat':
      return n.min === 0 || nullable(n.body)
    case 'backref':
      return true
    default:
      return true
  }
}

const LINE_TERMINATOR = (c: number) => c === 10 || c === 13 || c === 0x2028 || c === 0x2029

export const isWordChar = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95

function isSpace(c: number): boolean {
  return (
    (c >= 9 && c <= 13) ||
    c === 32 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  )
}

function escapeTest(e: string, c: number): boolean {
  switch (e) {
    case 'd':
      return c >= 48 && c <= 57
    case 'D':
      return !(c >= 48 && c <= 57)
    case 'w':
      return isWordChar(c)
    case 'W':
      return !isWordChar(c)
    case 's':
      return isSpace(c)
    default:
      return !isSpace(c)
  }
}

/** ECMAScript's Canonicalize for non-unicode caseless matching: upper case, unless that leaves ASCII. */
export function fold(c: number): number {
  const u = String.fromCharCode(c).toUpperCase()
  if (u.length !== 1) return c
  const cu = u.charCodeAt(0)
  return c >= 128 && cu < 128 ? c : cu
}

function lower(c: number): number {
  const l = String.fromCharCode(c).toLowerCase()
  return l.length === 1 ? l.charCodeAt(0) : c
}

function inSet(set: CharSet, c: number): boolean {
  const r = set.ranges
  for (let k = 0; k < r.length; k += 2) if (c >= (r[k] as number) && c <= (r[k + 1] as number)) return true
  for (const e of set.escapes) if (escapeTest(e, c)) return true
  return false
}

function charTest(n: Node, flags: Flags): (c: number) => boolean {
  if (n.t === 'any') return flags.dotAll ? () => true : (c) => !LINE_TERMINATOR(c)
  if (n.t === 'char') {
    const f = fold(n.c)
    return flags.ignoreCase ? (c) => c === n.c || fold(c) === f : (c) => c === n.c
  }
  const set = (n as Extract<Node, { t: 'class' }>).set
  const plain = (c: number) => inSet(set, c)
  const hit = flags.ignoreCase ? (c: number) => plain(c) || plain(fold(c)) || plain(lower(c)) : plain
  return set.negate ? (c) => !hit(c) : hit
}

export function isLineTerminator(c: number): boolean {
  return LINE_TERMINATOR(c)
}
