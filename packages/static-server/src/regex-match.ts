import { type BoundedRegex, EdgeError, type MatchLimits, RegexLimitError } from '@edgestack/common'

/**
 * What one nginx.conf regex match may spend. nginx sets no PCRE2 limit of its own, so PCRE2's
 * default (10,000,000) applies there: on `^/(a+)+$` against 40 `a` and a `b`, nginx 1.22
 * spends 150-470 ms of its worker on it before answering 500. A step of our counting engine
 * costs about what PCRE2's interpreter spends on one, so we stop at 1% of that budget: the
 * same 500 and log line, with the event loop held for milliseconds (README "Bounded regexes").
 * Every choice point counts, so the pending ones (depth) can never exceed it either.
 */
export const NGINX_REGEX_LIMITS: MatchLimits = Object.freeze({ matchLimit: 100_000, depthLimit: Number.POSITIVE_INFINITY })

/** A match past the limits, with nginx's words (ngx_http_regex_exec, logged at `alert`). */
export class RegexMatchFailed extends EdgeError {
  constructor(re: BoundedRegex, subject: string, cause: RegexLimitError) {
    super('EDGE_ERR_REGEX_MATCH', `pcre2_match() failed: ${cause.pcre2Code} on "${printable(subject)}" using "${printable(re.pattern)}"`, { cause })
  }
}

/** ngx_http_regex_exec: the match, or null; a match past the limits throws RegexMatchFailed. */
export function regexExec(re: BoundedRegex, subject: string): RegExpExecArray | null {
  try {
    return re.exec(subject, NGINX_REGEX_LIMITS)
  } catch (err) {
    if (err instanceof RegexLimitError) throw new RegexMatchFailed(re, subject, err)
    throw err
  }
}

/** A subject comes from the request (a decoded URI may hold %0A): no raw control byte reaches the log. */
function printable(s: string): string {
  return s.replace(/[\x00-\x1f\x7f"\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}
