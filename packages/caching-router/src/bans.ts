import { getHeader, type MatchLimits, UsageError } from '@edgestack/common'
import type { CacheObject } from './cache-object.js'
import type { Counters } from './counters.js'
import type { BanChecker, LookupRequest } from './store.js'
import { type Ban, BanError, type BanSubject, parseBan, parseBanString } from './vcl/ban.js'
import { VARNISH_REGEX_LIMITS } from './vcl/regex.js'

interface Entry {
  seq: number
  time: number
  ban: Ban
  /** Objects this ban removed (varnish shows a reference count here). */
  killed: number
  /** A newer ban has the same text: this one tests nothing more (varnishd's duplicate, `C`). */
  completed: boolean
}

/**
 * varnishd's ban list (`ban <field> <op> <arg> [&& ...]`): an object stored before a ban is
 * tested against it at lookup, and dropped when every condition of the ban matches. Regexes
 * are compiled here, on the admin path, never per request.
 */
export class BanList implements BanChecker {
  readonly #bans: Entry[] = []
  readonly #counters: Counters
  readonly #limits: () => MatchLimits
  #seq = 0

  readonly #clock: () => number

  /** `clock`: milliseconds, the router's (tests pass their own); `limits`: pcre2_match_limit and friends now. */
  constructor(counters: Counters, clock: () => number = Date.now, limits: () => MatchLimits = () => VARNISH_REGEX_LIMITS) {
    this.#counters = counters
    this.#clock = clock
    this.#limits = limits
  }

  /** `ban` with its arguments already split into words (the admin CLI). */
  add(args: string[], nowMs = this.#clock()): void {
    this.#push(parsed(() => parseBan(args)), nowMs)
  }

  /** VCL's `ban("...")`: the same parser as the admin CLI's, on one string. */
  addExpression(text: string, nowMs = this.#clock()): void {
    this.#push(parsed(() => parseBanString(text)), nowMs)
  }

  #push(ban: Ban, nowMs: number): void {
    // cache_ban.c BAN_Commit: an older ban with the same spec is completed (bans_dups), the
    // new one tests every object the old one would have.
    for (const older of this.#bans) {
      if (!older.completed && older.ban.text === ban.text) {
        older.completed = true
        this.#counters.bans_dups++
      }
    }
    this.#bans.push({ seq: ++this.#seq, time: nowMs, ban, killed: 0, completed: false })
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
    const now = this.#clock()
    for (let i = this.#bans.length - 1; i >= 0; i--) {
      const ban = this.#bans[i] as Entry
      if (ban.seq <= obj.banSeq) break
      if (!ban.completed && ban.ban.matches(subjectOf(obj, req, now), this.#limits())) {
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
    while (drop < this.#bans.length - 1 && (this.#bans[drop] as Entry).seq <= oldestBanSeq) drop++
    if (drop > 0) this.#bans.splice(0, drop)
    this.#counters.bans = this.#bans.length
  }

  /** `ban.list`, as varnishd prints it. */
  /** The bans, newest first: when each was added (ms), the objects it removed, its text. */
  entries(): Array<{ time: number; killed: number; completed: boolean; text: string }> {
    return this.#bans.map((b) => ({ time: b.time, killed: b.killed, completed: b.completed, text: b.ban.text })).reverse()
  }

  list(): string {
    let out = 'Present bans:\n'
    for (let i = this.#bans.length - 1; i >= 0; i--) {
      const b = this.#bans[i] as Entry
      out += `${(b.time / 1000).toFixed(6)} ${String(b.killed).padStart(5)} ${b.completed ? 'C' : '-'}  ${b.ban.text}\n`
    }
    return out
  }
}

/** A BanError is the admin user's or the VCL's mistake: a UsageError (CLI status 106). */
function parsed(parse: () => Ban): Ban {
  try {
    return parse()
  } catch (err) {
    if (err instanceof BanError) throw new UsageError(err.message)
    throw err
  }
}

/** What a ban tests: the stored object, and the request looking it up (as varnishd's lookup does). */
function subjectOf(obj: CacheObject, req: LookupRequest, now: number): BanSubject {
  return {
    url: req.url,
    reqHeader: (name) => getHeader(req.headers, name.toLowerCase()),
    objHeader: (name) => getHeader(obj.headers, name.toLowerCase()),
    status: obj.status,
    ttl: obj.ttlLeft(now),
    age: obj.ageSeconds(now),
    grace: obj.grace,
    keep: obj.keep,
  }
}
