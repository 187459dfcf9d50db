/**
 * A parser of the JavaScript regex syntax that `pcre-to-js.ts` emits (non-unicode mode, Annex B
 * leniencies for `{` and `]`), into a tree the bounded matcher runs and the load-time check reads.
 * Nesting is walked with an explicit stack, so a pattern of 100,000 `(` cannot overflow ours.
 */

export type Node =
  | { t: 'char'; c: number }
  | { t: 'any' }
  | { t: 'class'; set: CharSet }
  | { t: 'bol' }
  | { t: 'eol' }
  | { t: 'wordb'; negate: boolean }
  | { t: 'group'; index: number | undefined; body: Node }
  | { t: 'look'; behind: boolean; negate: boolean; body: Node }
  | { t: 'backref'; index: number }
  | { t: 'alt'; alts: Node[] }
  | { t: 'seq'; items: Node[] }
  | { t: 'repeat'; min: number; max: number; greedy: boolean; body: Node }

/** A character class: code-unit ranges (pairs, inclusive) plus the escapes \d \w \s and their negations. */
export interface CharSet {
  ranges: number[]
  escapes: string
  negate: boolean
}

export interface Parsed {
  node: Node
  groups: number
  names: Map<string, number>
}

export class RegexSyntaxError extends Error {}

/** PCRE2's own ceiling on `{n,m}` (65535), so counted repeats cannot be made arbitrarily costly. */
const MAX_COUNT = 65535

interface Frame {
  alts: Node[][]
  open: { kind: 'group'; index: number | undefined } | { kind: 'look'; behind: boolean; negate: boolean } | undefined
}

export function parseRegex(src: string): Parsed {
  let groups = 0
  const names = new Map<string, number>()
  const stack: Frame[] = [{ alts: [[]], open: undefined }]
  let i = 0
  // The previous item was a quantifier: `a**` is an error, as in V8 and PCRE.
  let quantified = false
  const top = () => stack[stack.length - 1] as Frame
  const items = () => top().alts[top().alts.length - 1] as Node[]
  const fail = (msg: string): never => {
    throw new RegexSyntaxError(`${msg} at offset ${i}`)
  }
  while (i < src.length) {
    const c = src[i] as string
    if (c === '(' || c === '|' || c === ')') quantified = false
    if (c === '(') {
      i++
      if (src[i] === '?') {
        const k = src[i + 1]
        if (k === ':') {
          stack.push({ alts: [[]], open: { kind: 'group', index: undefined } })
          i += 2
        } else if (k === '=' || k === '!') {
          stack.push({ alts: [[]], open: { kind: 'look', behind: false, negate: k === '!' } })
          i += 2
        } else if (k === '<' && (src[i + 2] === '=' || src[i + 2] === '!')) {
          stack.push({ alts: [[]], open: { kind: 'look', behind: true, negate: src[i + 2] === '!' } })
          i += 3
        } else if (k === '<') {
          const end = src.indexOf('>', i)
          const name = end === -1 ? '' : src.slice(i + 2, end)
          if (!/^[A-Za-z_$][\w$]*$/.test(name)) fail('invalid group name')
          if (names.has(name)) fail(`duplicate group name "${name}"`)
          names.set(name, ++groups)
          stack.push({ alts: [[]], open: { kind: 'group', index: groups } })
          i = end + 1
        } else fail('unrecognized character after (?')
      } else stack.push({ alts: [[]], open: { kind: 'group', index: ++groups } })
      continue
    }
    if (c === '|') {
      top().alts.push([])
      i++
      continue
    }
    if (c === ')') {
      const f = stack.pop() as Frame
      if (!f.open) fail('unmatched closing parenthesis')
      const body = joinAlts(f.alts)
      const open = f.open as NonNullable<Frame['open']>
      items().push(open.kind === 'group' ? { t: 'group', index: open.index, body } : { t: 'look', behind: open.behind, negate: open.negate, body })
      i++
      continue
    }
    const q = quantifier(src, i)
    if (q) {
      const list = items()
      const prev = list[list.length - 1]
      if (!prev || prev.t === 'bol' || prev.t === 'eol' || prev.t === 'wordb' || (prev.t === 'look' && prev.behind)) fail('quantifier does not follow a repeatable item')
      if (quantified) fail('nothing to repeat')
      if (q.min > q.max) fail('numbers out of order in {} quantifier')
      list[list.length - 1] = { t: 'repeat', min: q.min, max: q.max, greedy: q.greedy, body: prev as Node }
      quantified = true
      i = q.end
      continue
    }
    quantified = false
    const list = items()
    const simple: Node | undefined = c === '^' ? { t: 'bol' } : c === '$' ? { t: 'eol' } : c === '.' ? { t: 'any' } : undefined
    if (simple) {
      list.push(simple)
      i++
    } else if (c === '[') {
      const r = parseClass(src, i + 1, fail)
      list.push({ t: 'class', set: r.set })
      i = r.end
    } else if (c === '\\') {
      const r = parseEscape(src, i + 1, false, fail)
      if (r.kind === 'node') list.push(r.node)
      else if (r.kind === 'backref') list.push({ t: 'backref', index: r.index })
      else if (r.kind === 'named') list.push({ t: 'backref', index: -1, name: r.name } as Node)
      i = r.end
    } else {
      list.push({ t: 'char', c: src.charCodeAt(i) })
      i++
    }
  }
  if (stack.length !== 1) fail('missing closing parenthesis')
  const node = joinAlts((stack[0] as Frame).alts)
  resolveBackrefs(node, groups, names, fail)
  return { node, groups, names }
}

function joinAlts(alts: Node[][]): Node {
  const seqs = alts.map((items): Node => (items.length === 1 ? (items[0] as Node) : { t: 'seq', items }))
  return seqs.length === 1 ? (seqs[0] as Node) : { t: 'alt', alts: seqs }
}

/** `\k<name>` and `\N` are resolved once every group is known (a reference may precede its group). */
function resolveBackrefs(root: Node, groups: number, names: Map<string, number>, fail: (m: string) => never): void {
  const todo: Node[] = [root]
  while (todo.length > 0) {
    const n = todo.pop() as Node
    if (n.t === 'backref') {
      const name = (n as { name?: string }).name
      if (name !== undefined) {
        const idx = names.get(name)
        if (idx === undefined) fail(`reference to non-existent subpattern "${name}"`)
        n.index = idx as number
      } else if (n.index > groups) fail('reference to non-existent subpattern')
    } else if (n.t === 'seq') todo.push(...n.items)
    else if (n.t === 'alt') todo.push(...n.alts)
    else if (n.t === 'group' || n.t === 'look' || n.t === 'repeat') todo.push(n.body)
  }
}

function quantifier(src: string, i: number): { min: number; max: number; greedy: boolean; end: number } | undefined {
  const c = src[i]
  let min = 0
  let max = Number.POSITIVE_INFINITY
  let end = i + 1
  if (c === '+') min = 1
  else if (c === '?') max = 1
  else if (c === '{') {
    // Annex B: a `{` that does not start a valid quantifier is a literal.
    const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(i, i + 24))
    if (!m) return undefined
    min = Number(m[1])
    max = m[2] === undefined ? min : m[3] === '' ? Number.POSITIVE_INFINITY : Number(m[3])
    if (min > MAX_COUNT || (max !== Number.POSITIVE_INFINITY && max > MAX_COUNT)) {
      throw new RegexSyntaxError(`number too big in {} quantifier at offset ${i}`)
    }
    end = i + m[0].length
  } else if (c !== '*') return undefined
  let greedy = true
  if (src[end] === '?') {
    greedy = false
    end++
  }
  return { min, max, greedy, end }
}

type Escape =
  | { kind: 'node'; node: Node; end: number }
  | { kind: 'backref'; index: number; end: number }
  | { kind: 'named'; name: string; end: number }

const CONTROL: Record<string, number> = { n: 10, r: 13, t: 9, f: 12, v: 11, '0': 0 }

function parseEscape(src: string, i: number, inClass: boolean, fail: (m: string) => never): Escape {
  const c = src[i]
  if (c === undefined) fail('\\ at end of pattern')
  const ch = c as string
  const char = (code: number, end: number): Escape => ({ kind: 'node', node: { t: 'char', c: code }, end })
  if ('dDwWsS'.includes(ch)) return { kind: 'node', node: { t: 'class', set: { ranges: [], escapes: ch, negate: false } }, end: i + 1 }
  if (ch === 'b') return inClass ? char(8, i + 1) : { kind: 'node', node: { t: 'wordb', negate: false }, end: i + 1 }
  if (ch === 'B' && !inClass) return { kind: 'node', node: { t: 'wordb', negate: true }, end: i + 1 }
  if (ch in CONTROL && !(ch === '0' && /[0-9]/.test(src[i + 1] ?? ''))) return char(CONTROL[ch] as number, i + 1)
  if (ch === 'x' && /^[0-9A-Fa-f]{2}$/.test(src.slice(i + 1, i + 3))) return char(Number.parseInt(src.slice(i + 1, i + 3), 16), i + 3)
  if (ch === 'u' && /^[0-9A-Fa-f]{4}$/.test(src.slice(i + 1, i + 5))) return char(Number.parseInt(src.slice(i + 1, i + 5), 16), i + 5)
  if (ch === 'c' && /[A-Za-z]/.test(src[i + 1] ?? '')) return char((src.charCodeAt(i + 1) as number) % 32, i + 2)
  if (ch === 'k' && !inClass && src[i + 1] === '<') {
    const end = src.indexOf('>', i)
    if (end === -1) fail('invalid named reference')
    return { kind: 'named', name: src.slice(i + 2, end), end: end + 1 }
  }
  if (/[1-9]/.test(ch) && !inClass) {
    const m = /^\d+/.exec(src.slice(i)) as RegExpExecArray
    return { kind: 'backref', index: Number(m[0]), end: i + m[0].length }
  }
  return char(src.charCodeAt(i), i + 1)
}

function parseClass(src: string, i: number, fail: (m: string) => never): { set: CharSet; end: number } {
  const set: CharSet = { ranges: [], escapes: '', negate: false }
  if (src[i] === '^') {
    set.negate = true
    i++
  }
  const atom = (): { code: number } | { esc: string } => {
    if (src[i] === '\\') {
      const r = parseEscape(src, i + 1, true, fail)
      i = r.end
      const n = (r as { node: Node }).node
      return n.t === 'class' ? { esc: n.set.escapes } : { code: (n as { c: number }).c }
    }
    return { code: src.charCodeAt(i++) }
  }
  while (i < src.length && src[i] !== ']') {
    const a = atom()
    if ('esc' in a) {
      set.escapes += a.esc
      continue
    }
    if (src[i] === '-' && src[i + 1] !== ']' && i + 1 < src.length) {
      i++
      const b = atom()
      if ('esc' in b) {
        // Annex B: `[a-\d]` is a, -, and \d.
        set.ranges.push(a.code, a.code, 45, 45)
        set.escapes += b.esc
        continue
      }
      if (b.code < a.code) fail('range out of order in character class')
      set.ranges.push(a.code, b.code)
    } else set.ranges.push(a.code, a.code)
  }
  if (src[i] !== ']') fail('missing terminating ] for character class')
  return { set, end: i + 1 }
}
