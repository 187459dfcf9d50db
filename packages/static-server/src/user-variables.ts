import type { MapModel, UserVarDefs } from './config/model.js'
import { RegexMatchFailed, regexExec } from './regex-match.js'
import { setLimitRate } from './limit-rate.js'
import type { RequestState } from './request-state.js'
import { expand } from './variables.js'

/** Maps being looked up right now (lookups are synchronous): a map reading itself gets "". */
const evaluating = new Set<MapModel>()

/**
 * The value of a variable the config defines. A `set` (or a named capture) stores it for the
 * rest of the request; a map is looked up the first time it is read and kept for the request
 * unless `volatile`, as nginx caches indexed variables (its value then survives rewrites and
 * internal redirects, as in nginx). Never set and no map: "" (nginx's uninitialized value).
 */
export function userVariable(st: RequestState, defs: UserVarDefs, name: string): string {
  const known = st.userValues?.get(name)
  if (known !== undefined) return known
  const map = defs.maps.get(name)
  if (map === undefined || evaluating.has(map)) return ''
  evaluating.add(map)
  let value: string
  try {
    value = lookup(st, map)
  } finally {
    evaluating.delete(map)
  }
  if (!map.volatile) values(st).set(name, value)
  return value
}

function values(st: RequestState): Map<string, string> {
  st.userValues ??= new Map()
  return st.userValues
}

/** `set $name value`: `$args` is nginx's one changeable built-in (it is the query string). */
export function setVariable(st: RequestState, name: string, value: string): void {
  if (name === 'args') st.args = value
  else if (name === 'limit_rate') setLimitRate(st, value)
  else values(st).set(name, value)
}

/**
 * ngx_http_regex_exec: a match of a regex with groups replaces the request's $1..$9, and named
 * groups become variables. (A map's regex that fails leaves $1..$9 as they were; the rewrite
 * module clears them before its own regexes run: rewrite-phase.ts.)
 */
export function captured(st: RequestState, m: RegExpExecArray): void {
  if (m.length > 1) st.captures = m
  if (m.groups) for (const [k, v] of Object.entries(m.groups)) values(st).set(k, v ?? '')
}

/**
 * ngx_http_map_find: exact keys on the lower-cased value, then (hostnames) the longest
 * `*.suffix` and the longest `prefix.*`, then regexes in file order on the value as it is (never
 * on an empty value), then `default`.
 */
function lookup(st: RequestState, map: MapModel): string {
  let src = expand(map.source, st)
  // ngx_http_map_variable drops one trailing dot of a host name.
  if (map.hostnames && src.endsWith('.')) src = src.slice(0, -1)
  const low = src.toLowerCase()
  let t = map.exact.get(low)
  if (t === undefined && map.hostnames) {
    for (const h of map.heads) {
      if (low.endsWith(h.suffix)) {
        t = h.value
        break
      }
    }
    if (t === undefined) {
      for (const h of map.tails) {
        if (low.length > h.prefix.length && low.startsWith(h.prefix)) {
          t = h.value
          break
        }
      }
    }
  }
  if (t === undefined && src !== '') {
    for (const r of map.regexes) {
      // ngx_http_map_find: a match past the limits ends the search with the default value.
      let m: RegExpExecArray | null
      try {
        m = regexExec(r.re, src)
      } catch (err) {
        if (!(err instanceof RegexMatchFailed)) throw err
        st.alert(err.message)
        break
      }
      if (m) {
        captured(st, m)
        t = r.value
        break
      }
    }
  }
  return expand(t ?? map.default, st)
}
