import type { LocationModel } from './config/model.js'
import { regexExec } from './regex-match.js'

export interface LocationMatch {
  loc: LocationModel | undefined
  /** The regex location's captures, for $1..$9. */
  captures: RegExpExecArray | undefined
  /**
   * The URI is a proxy_pass location's name without its final slash: nginx answers 301 to
   * the name (clcf->auto_redirect, ngx_http_find_static_location's NGX_DONE).
   */
  autoRedirect?: true
}

/**
 * ngx_http_core_find_location: `=` ends the search; otherwise the longest prefix wins, its
 * nested locations are searched first, `^~` stops before regexes, then regexes are tried in
 * file order (the nested level's before the outer level's) and the first match wins.
 */
export function findLocation(locs: readonly LocationModel[], uri: string): LocationMatch {
  const r = find(locs, uri)
  return r.autoRedirect ? { loc: r.loc, captures: undefined, autoRedirect: true } : { loc: r.loc, captures: r.captures }
}

interface Found extends LocationMatch {
  done: boolean
}

const isStatic = (l: LocationModel) => l.modifier === '' || l.modifier === '^~' || l.modifier === '='

function find(locs: readonly LocationModel[], uri: string): Found {
  // Regexes are not tried then: the static search ends with NGX_DONE.
  if (!locs.some((l) => isStatic(l) && l.pattern === uri)) {
    const named = uri.length > 0 ? locs.find((l) => isStatic(l) && l.conf.proxyPass && l.pattern.length === uri.length + 1 && l.pattern.endsWith('/') && l.pattern.startsWith(uri)) : undefined
    if (named) return { loc: named, captures: undefined, done: true, autoRedirect: true }
  }
  let best: LocationModel | undefined
  for (const l of locs) {
    if (l.modifier === '=') {
      if (uri === l.pattern) return { loc: l, captures: undefined, done: true }
    } else if ((l.modifier === '' || l.modifier === '^~') && uri.startsWith(l.pattern)) {
      if (!best || l.pattern.length > best.pattern.length) best = l
    }
  }
  let result: Found = { loc: best, captures: undefined, done: false }
  if (best) {
    if (best.children.length > 0) {
      const inner = find(best.children, uri)
      if (inner.done) return inner
      if (inner.loc) result = inner
    }
    if (best.modifier === '^~') return { ...result, done: true }
  }
  for (const l of locs) {
    if (!l.re) continue
    const m = regexExec(l.re, uri)
    if (!m) continue
    if (l.children.length > 0) {
      const inner = find(l.children, uri)
      if (inner.loc) return { loc: inner.loc, captures: inner.captures ?? m, done: true }
    }
    return { loc: l, captures: m, done: true }
  }
  return result
}
