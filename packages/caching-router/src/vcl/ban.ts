import { type BoundedRegex, type MatchLimits, RegexCompileError, RegexLimitError } from '@edgestack/common'
import { compilePcre, VARNISH_REGEX_LIMITS } from './regex.js'
import { parseDuration } from './types.js'

/**
 * Ban expressions, shared by VCL's `ban()` / `std.ban()` and the admin CLI's `ban` command:
 * `field op arg [&& field op arg ...]` with varnishd 7's fields and operators
 * (cache_ban_build.c), its error wording, regexes translated like VCL's, parsed once per ban.
 */

/** What a ban is tested against: the stored object and the request that fetched it. */
export interface BanSubject {
  readonly url: string
  reqHeader(name: string): string | undefined
  objHeader(name: string): string | undefined
  readonly status: number
  /** Seconds. */
  readonly ttl: number
  readonly age: number
  readonly grace: number
  readonly keep: number
}

export class BanError extends Error {}

export interface Ban {
  /** The expression as varnishd lists it in `ban.list`. */
  readonly text: string
  /** True when a test reads req.* (the ban lurker cannot evaluate those without a request). */
  readonly usesReq: boolean
  /** `limits`: pcre2_match_limit and pcre2_depth_limit now (varnishd's defaults when left out). */
  matches(subject: BanSubject, limits?: MatchLimits): boolean
}

type Test = (s: BanSubject, limits: MatchLimits) => boolean

const INTEGER = /^-?\d{1,15}$/
const EQUALITY = new Set(['==', '!=', '~', '!~'])
const ORDERING = new Set(['==', '!=', '<', '>', '<=', '>='])
const DURATION_FIELDS = new Set(['obj.ttl', 'obj.age', 'obj.grace', 'obj.keep'])

/** `ban` from the admin CLI: arguments already split (varnishadm quoting). */
export function parseBan(args: readonly string[]): Ban {
  // `ban "req.url ~ /x"` as one argument is split again, as varnishd does.
  const words = args.length === 1 ? splitBan(args[0] as string) : [...args]
  if (words.length < 3) throw new BanError('Too few parameters')
  if ((words.length - 3) % 4 !== 0) throw new BanError('Wrong number of arguments')
  const tests: Test[] = []
  let usesReq = false
  for (let i = 0; i < words.length; i += 4) {
    if (i > 0 && words[i - 1] !== '&&') throw new BanError(`Found "${words[i - 1]}" expected &&`)
    const field = words[i] as string
    usesReq ||= field.startsWith('req.')
    tests.push(condition(field, words[i + 1] as string, words[i + 2] as string))
    // cache_ban.c keeps a duration as a number and prints it back in its own unit (ban.list).
    if (DURATION_FIELDS.has(field)) words[i + 2] = formatDuration(parseDuration(words[i + 2] as string) as number)
  }
  return {
    text: words.join(' '),
    usesReq,
    matches: (s, limits = VARNISH_REGEX_LIMITS) => tests.every((t) => t(s, limits)),
  }
}

const DURATION_UNITS: Array<[string, number]> = [
  ['y', 365 * 86400],
  ['w', 7 * 86400],
  ['d', 86400],
  ['h', 3600],
  ['m', 60],
  ['s', 1],
]

/** A ban's duration as varnishd prints it: the largest whole unit (`1.5h` is `90m`), else seconds, under one second ms. */
function formatDuration(seconds: number): string {
  if (seconds === 0) return '0s'
  for (const [unit, n] of DURATION_UNITS) if (Math.abs(seconds) >= n && Number.isInteger(seconds / n)) return `${seconds / n}${unit}`
  if (Math.abs(seconds) >= 1) return `${seconds}s`
  return `${Math.round(seconds * 1e6) / 1e3}ms`
}

/** `ban("...")` in VCL: one string, words split on blanks, `"..."` keeping blanks inside. */
export function parseBanString(text: string): Ban {
  return parseBan(splitBan(text))
}

function splitBan(text: string): string[] {
  const words: string[] = []
  let i = 0
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === '\t') i++
    if (i >= text.length) break
    if (text[i] === '"') {
      const end = text.indexOf('"', i + 1)
      if (end === -1) throw new BanError('Unterminated quoted string')
      words.push(text.slice(i + 1, end))
      i = end + 1
    } else {
      let j = i
      while (j < text.length && text[j] !== ' ' && text[j] !== '\t') j++
      words.push(text.slice(i, j))
      i = j
    }
  }
  return words
}

function condition(field: string, op: string, arg: string): Test {
  if (DURATION_FIELDS.has(field)) {
    if (!ORDERING.has(op)) throw new BanError(`expected conditional (==, !=, <, >, <= or >=) got "${op}"`)
    const seconds = parseDuration(arg)
    if (seconds === undefined) throw new BanError(`expected duration <n.nn>[ms|s|m|h|d|w|y] got "${arg}"`)
    const key = field.slice(4) as 'ttl' | 'age' | 'grace' | 'keep'
    return ordered(op, (s) => s[key], seconds)
  }
  let get: (s: BanSubject) => string | undefined
  if (field === 'req.url') get = (s) => s.url
  else if (field === 'obj.status') {
    // varnishd stores `obj.status == abc` and never matches it; we refuse it up front.
    if ((op === '==' || op === '!=') && !INTEGER.test(arg)) throw new BanError(`expected an integer status got "${arg}"`)
    get = (s) => String(s.status)
  } else if (field.startsWith('req.http.') || field.startsWith('obj.http.')) {
    const name = field.slice(9)
    // varnishd takes an empty header name (`req.http.`) and matches nothing with it.
    if (name === '') throw new BanError(`Missing header name: "${field}"`)
    get = field.startsWith('req.') ? (s) => s.reqHeader(name) : (s) => s.objHeader(name)
  } else throw new BanError(`Unknown or unsupported field "${field}"`)
  if (!EQUALITY.has(op)) throw new BanError(`expected conditional (==, !=, ~ or !~) got "${op}"`)
  if (op === '==') return (s) => get(s) === arg
  // An absent header is unequal to and does not match anything (ban_evaluate()).
  if (op === '!=') return (s) => get(s) !== arg
  let re: BoundedRegex
  try {
    re = compilePcre(arg)
  } catch (err) {
    if (err instanceof RegexCompileError) throw new BanError(`Regex compile error: ${err.message}`)
    throw err
  }
  // ban_evaluate() takes a failed match (past pcre2_match_limit) as no match, for `~` and `!~`.
  if (op === '~') return (s, limits) => {
    const v = get(s)
    return v !== undefined && matched(re, v, limits)
  }
  return (s, limits) => {
    const v = get(s)
    return v === undefined || !matched(re, v, limits)
  }
}

function matched(re: BoundedRegex, v: string, limits: MatchLimits): boolean {
  try {
    return re.test(v, limits)
  } catch (err) {
    if (err instanceof RegexLimitError) return false
    throw err
  }
}

function ordered(op: string, get: (s: BanSubject) => number, n: number): Test {
  switch (op) {
    case '==':
      return (s) => get(s) === n
    case '!=':
      return (s) => get(s) !== n
    case '<':
      return (s) => get(s) < n
    case '>':
      return (s) => get(s) > n
    case '<=':
      return (s) => get(s) <= n
    default:
      return (s) => get(s) >= n
  }
}
