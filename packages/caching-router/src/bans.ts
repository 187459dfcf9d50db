import { getHeader, UsageError } from '@edgestack/common'
import type { CacheObject } from './cache-object.js'
import type { Counters } from './counters.js'
import type { BanChecker, LookupRequest } from './store.js'

type Operator = '==' | '!=' | '~' | '!~' | '<' | '>' | '<=' | '>='

interface Condition {
  field: string
  /** For req.http.X / obj.http.X: the lower-case header name. */
  header: string | undefined
  op: Operator
  arg: string
  regex: RegExp | undefined
}

interface Ban {
  seq: number
  time: number
  spec: string
  conditions: Condition[]
  /** Objects this ban removed (varnish shows a reference count here). */
  killed: number
}

const FIELDS = new Set(['req.url', 'obj.status'])
const OPERATORS = new Set<Operator>(['==', '!=', '~', '!~', '<', '>', '<=', '>='])

/**
 * varnishd's ban list (`ban <field> <op> <arg> [&& ...]`): an object stored before a ban is
 * tested against it at lookup, and dropped when every condition of the ban matches. Regexes
 * are compiled here, on the admin path, never per request.
 */
export class BanList implements BanChecker {
  readonly #bans: Ban[] = []
  readonly #counters: Counters
  #seq = 0

  constructor(counters: Counters) {
    this.#counters = counters
  }

  /** `ban` with its arguments already split into words. */
  add(args: string[], nowMs = Date.now()): void {
    if (args.length < 3 || args.length % 4 !== 3) throw new UsageError('expected field operator argument [&& field operator argument]...')
    const conditions: Condition[] = []
    for (let i = 0; i < args.length; i += 4) {
      if (i > 0 && args[i - 1] !== '&&') throw new UsageError(`expected && before "${args[i]}"`)
      const field = args[i] as string
      const op = args[i + 1] as Operator
      const arg = args[i + 2] as string
      let header: string | undefined
      if (field.startsWith('req.http.') || field.startsWith('obj.http.')) header = field.slice(9).toLowerCase()
      else if (!FIELDS.has(field)) throw new UsageError(`Unknown or unsupported field "${field}"`)
      if (!OPERATORS.has(op)) throw new UsageError(`invalid operation "${op}"`)
      if (field !== 'obj.status' && (op === '<' || op === '>' || op === '<=' || op === '>=')) {
        throw new UsageError(`expected operator "==" or "!=" or "~" or "!~" for "${field}"`)
      }
      let regex: RegExp | undefined
      if (op === '~' || op === '!~') {
        try {
          regex = arg.startsWith('(?i)') ? new RegExp(arg.slice(4), 'i') : new RegExp(arg)
        } catch (err) {
          throw new UsageError(`Regex compilation error: ${(err as Error).message}`)
        }
      }
      conditions.push({ field, header, op, arg, regex })
    }
    this.#bans.push({ seq: ++this.#seq, time: nowMs, spec: conditions.map((c) => `${c.field} ${c.op} ${c.arg}`).join(' && '), conditions, killed: 0 })
    this.#counters.bans = this.#bans.length
    this.#counters.bans_added++
  }

  /** The newest ban's number: an object stored now needs no test against older ones. */
  get newest(): number {
    return this.#seq
  }

  /**
   * Tests an object against the bans added since it was last tested, as varnishd does at
   * lookup: each object meets each ban once, so a hit costs nothing once it passed them.
   */
  isBanned(obj: CacheObject, req: LookupRequest): boolean {
    if (obj.banSeq >= this.#seq) return false
    for (let i = this.#bans.length - 1; i >= 0; i--) {
      const ban = this.#bans[i] as Ban
      if (ban.seq <= obj.banSeq) break
      if (ban.conditions.every((c) => matches(c, obj, req))) {
        ban.killed++
        this.#counters.bans_obj_killed++
        return true
      }
    }
    obj.banSeq = this.#seq
    return false
  }

  /**
   * Drops the bans no stored object predates (varnishd's ban lurker does this over time);
   * the newest stays, as in varnishd, so ban.list shows what was done last.
   */
  prune(oldestBanSeq: number): void {
    let drop = 0
    while (drop < this.#bans.length - 1 && (this.#bans[drop] as Ban).seq <= oldestBanSeq) drop++
    if (drop > 0) this.#bans.splice(0, drop)
    this.#counters.bans = this.#bans.length
  }

  /** `ban.list`, as varnishd prints it. */
  list(): string {
    let out = 'Present bans:\n'
    for (let i = this.#bans.length - 1; i >= 0; i--) {
      const b = this.#bans[i] as Ban
      out += `${(b.time / 1000).toFixed(6)} ${String(b.killed).padStart(5)} -  ${b.spec}\n`
    }
    return out
  }
}

function matches(c: Condition, obj: CacheObject, req: LookupRequest): boolean {
  let value: string | undefined
  if (c.field === 'req.url') value = req.url
  else if (c.field === 'obj.status') value = String(obj.status)
  else if (c.field.startsWith('req.')) value = getHeader(req.headers, c.header as string)
  else value = getHeader(obj.headers, c.header as string)
  switch (c.op) {
    case '==':
      return value === c.arg
    case '!=':
      return value !== c.arg
    case '~':
      return value !== undefined && (c.regex as RegExp).test(value)
    case '!~':
      return value === undefined || !(c.regex as RegExp).test(value)
    default: {
      const n = Number(value)
      const a = Number(c.arg)
      if (c.op === '<') return n < a
      if (c.op === '>') return n > a
      if (c.op === '<=') return n <= a
      return n >= a
    }
  }
}
