import { isLineTerminator, isWordChar, fold, type Program } from './program.js'

/**
 * A backtracking matcher over program.ts's instructions with PCRE2's two bounds: every choice
 * point taken counts against `matchLimit` (pcre2_set_match_limit: "calls to the internal match
 * logic") and the choice points pending at once against `depthLimit` (pcre2_set_depth_limit).
 * Exceeding either ends the match with an error, never a wrong answer, as PCRE2 returns
 * PCRE2_ERROR_MATCHLIMIT / PCRE2_ERROR_DEPTHLIMIT.
 */

export interface MatchLimits {
  matchLimit: number
  /** Infinity when the real program does not apply one (PCRE2's JIT ignores the depth limit). */
  depthLimit: number
}

export type LimitKind = 'match' | 'depth'

export class LimitExceeded {
  constructor(readonly kind: LimitKind) {}
}

// Undo-log entry kinds on the backtracking stack.
const BRANCH = 0
const UNDO_SLOT = 1
const UNDO_REG = 2
const STAR_GREEDY = 3
const STAR_LAZY = 4

/** One call of pcre2_match(): the capture slots of the first match at or after `from`, or null. */
export function runProgram(prog: Program, input: string, from: number, limits: MatchLimits): Int32Array | null {
  const m = new Machine(prog, input, limits)
  const last = prog.anchored ? Math.min(from, 0) : input.length
  const first = prog.first
  for (let start = from; start <= last; start++) {
    if (first && (start >= input.length || !first(input.charCodeAt(start)))) continue
    m.slots.fill(-1)
    m.count()
    if (m.run(0, start, -1)) {
      m.slots[0] = start
      return m.slots
    }
  }
  return null
}

class Machine {
  readonly slots: Int32Array
  readonly regs: Int32Array
  steps = 0
  depth = 0

  constructor(
    readonly prog: Program,
    readonly input: string,
    readonly limits: MatchLimits,
  ) {
    this.slots = new Int32Array(prog.slots)
    this.regs = new Int32Array(Math.max(prog.regs, 1))
  }

  count(): void {
    if (++this.steps > this.limits.matchLimit) throw new LimitExceeded('match')
  }

  /** Runs from `pc` at `pos`; `endAt` >= 0 asks for a match ending exactly there (lookbehind). */
  run(startPc: number, startPos: number, endAt: number): boolean {
    const { insts } = this.prog
    const input = this.input
    const len = input.length
    const slots = this.slots
    const regs = this.regs
    const stack: number[] = []
    const baseDepth = this.depth
    let pc = startPc
    let pos = startPos
    const push = (kind: number, a: number, b: number, c: number) => {
      stack.push(kind, a, b, c)
      this.count()
      if (++this.depth > this.limits.depthLimit) throw new LimitExceeded('depth')
    }
    for (;;) {
      let ok = true
      const inst = insts[pc] as (typeof insts)[number]
      switch (inst.op) {
        case 'char':
          if (pos < len && input.charCodeAt(pos) === inst.c) {
            pos++
            pc++
          } else ok = false
          break
        case 'set':
          if (pos < len && inst.test(input.charCodeAt(pos))) {
            pos++
            pc++
          } else ok = false
          break
        case 'bol':
          if (pos === 0 || (this.multiline && isLineTerminator(input.charCodeAt(pos - 1)))) pc++
          else ok = false
          break
        case 'eol':
          if (pos === len || (this.multiline && isLineTerminator(input.charCodeAt(pos)))) pc++
          else ok = false
          break
        case 'wordb': {
          const a = pos > 0 && isWordChar(input.charCodeAt(pos - 1))
          const b = pos < len && isWordChar(input.charCodeAt(pos))
          if ((a !== b) !== inst.negate) pc++
          else ok = false
          break
        }
        case 'split':
          push(BRANCH, inst.y, pos, 0)
          pc = inst.x
          break
        case 'jmp':
          pc = inst.x
          break
        case 'save':
          stack.push(UNDO_SLOT, inst.slot, slots[inst.slot] as number, 0)
          slots[inst.slot] = pos
          pc++
          break
        case 'reset':
          for (let s = inst.from; s < inst.to; s++) {
            if (slots[s] === -1) continue
            stack.push(UNDO_SLOT, s, slots[s] as number, 0)
            slots[s] = -1
          }
          pc++
          break
        case 'mark':
          stack.push(UNDO_REG, inst.reg, regs[inst.reg] as number, 0)
          regs[inst.reg] = pos
          pc++
          break
        case 'progress':
          if (regs[inst.reg] === pos) ok = false
          else pc++
          break
        case 'backref': {
          const s = slots[inst.index * 2] as number
          const e = slots[inst.index * 2 + 1] as number
          if (s < 0 || e < 0) {
            pc++
            break
          }
          const n = e - s
          if (pos + n > len) ok = false
          else {
            for (let k = 0; k < n && ok; k++) {
              const x = input.charCodeAt(s + k)
              const y = input.charCodeAt(pos + k)
              ok = x === y || (this.ignoreCase && fold(x) === fold(y))
            }
            if (ok) {
              pos += n
              pc++
            }
          }
          break
        }
        case 'look':
          if (this.look(inst.start, pos, inst.behind, inst.negate, inst.maxLength, stack)) pc++
          else ok = false
          break
        case 'star': {
          let n = 0
          const max = Math.min(inst.max, len - pos)
          if (inst.greedy) {
            while (n < max && inst.test(input.charCodeAt(pos + n))) n++
            if (n < inst.min) ok = false
            else {
              if (n > inst.min) push(STAR_GREEDY, pc + 1, pos + n, pos + inst.min)
              pos += n
              pc++
            }
          } else {
            while (n < inst.min && n < max && inst.test(input.charCodeAt(pos + n))) n++
            if (n < inst.min) ok = false
            else {
              push(STAR_LAZY, pc, pos + n, pos + max)
              pos += n
              pc++
            }
          }
          break
        }
        case 'match':
          if (endAt < 0 || pos === endAt) {
            if (endAt < 0) this.slots[1] = pos
            this.depth = baseDepth
            return true
          }
          ok = false
          break
      }
      if (ok) continue
      // Backtrack: undo what the failed path wrote, down to the latest choice point.
      for (;;) {
        if (stack.length === 0) {
          this.depth = baseDepth
          return false
        }
        const c = stack.pop() as number
        const b = stack.pop() as number
        const a = stack.pop() as number
        const kind = stack.pop() as number
        if (kind === UNDO_SLOT) slots[a] = b
        else if (kind === UNDO_REG) regs[a] = b
        else if (kind === BRANCH) {
          this.depth--
          pc = a
          pos = b
          break
        } else if (kind === STAR_GREEDY) {
          // a: the instruction after the star, b: where the run ended, c: its shortest end.
          this.depth--
          const at = b - 1
          if (at > c) push(STAR_GREEDY, a, at, c)
          else this.count()
          pc = a
          pos = at
          break
        } else if (kind === STAR_LAZY) {
          // a: the star, b: where this try ended, c: how far the run may go.
          this.depth--
          const star = this.prog.insts[a] as Extract<(typeof insts)[number], { op: 'star' }>
          if (b >= c || !star.test(input.charCodeAt(b))) continue
          push(STAR_LAZY, a, b + 1, c)
          pc = a + 1
          pos = b + 1
          break
        }
      }
    }
  }

  get multiline(): boolean {
    return this.prog.multiline
  }

  get ignoreCase(): boolean {
    return this.prog.ignoreCase
  }

  /**
   * A lookaround runs as its own sub-match sharing the counters. Captures set by a positive one
   * stay (ECMAScript), recorded on the caller's stack so that backtracking past it undoes them.
   */
  look(start: number, pos: number, behind: boolean, negate: boolean, maxLength: number, outer: number[]): boolean {
    const saved = this.slots.slice()
    let found = false
    if (!behind) found = this.run(start, pos, -1)
    else {
      // ECMAScript matches a lookbehind backwards, greedy quantifiers taking the most: the
      // leftmost start that ends here is that match. Each start tried is counted.
      for (let k = Math.max(0, pos - maxLength); k <= pos && !found; k++) {
        this.count()
        found = this.run(start, k, pos)
      }
    }
    if (found && !negate) {
      for (let s = 2; s < saved.length; s++) {
        if (saved[s] !== this.slots[s]) outer.push(UNDO_SLOT, s, saved[s] as number, 0)
      }
      // The sub-match's end is not the caller's: slot 1 belongs to the whole match.
      this.slots[1] = saved[1] as number
      return true
    }
    this.slots.set(saved)
    return found !== negate
  }
}
