import { stat } from 'node:fs/promises'
import type { IfCondition, RewriteRule } from './config/model.js'
import type { FileCache } from './file-cache.js'
import { regexExec } from './regex-match.js'
import type { RequestState } from './request-state.js'
import { statusLineReason } from './error-page.js'
import { baseHeaders, finishHeaders, sendRedirect, sendWhole } from './respond.js'
import { contentTypeFor } from './static-file.js'
import { captured, setVariable } from './user-variables.js'
import { expand } from './variables.js'

/** 'next' continues in this location, 'restart' searches the location again, a number goes to error_page. */
export type RewriteOutcome = 'next' | 'restart' | 'done' | number

/** How a rule list ended: ran through ('on'), `break`, `rewrite ... last`, or answered. */
type Flow = 'on' | 'break' | 'last' | 'done' | number

/**
 * ngx_http_rewrite_module over one level's rules (rewrite, return, set, if, break) in the order
 * written. Synchronous when there is nothing to run, so a config without rules pays nothing.
 */
export function runRewrites(st: RequestState, rules: readonly RewriteRule[], cache: FileCache): RewriteOutcome | Promise<RewriteOutcome> {
  if (rules.length === 0) return 'next'
  return phase(st, rules, cache)
}

async function phase(st: RequestState, rules: readonly RewriteRule[], cache: FileCache): Promise<RewriteOutcome> {
  const changed = { uri: false }
  const f = await run(st, rules, cache, changed)
  if (f === 'on') return changed.uri ? 'restart' : 'next'
  if (f === 'last') return 'restart'
  if (f === 'break') {
    // `break` after a changed URI stays in this location with it, as `rewrite ... break` does.
    if (changed.uri) st.rewriteBreak = true
    return 'next'
  }
  return f
}

async function run(st: RequestState, rules: readonly RewriteRule[], cache: FileCache, changed: { uri: boolean }): Promise<Flow> {
  for (const rule of rules) {
    if (rule.kind !== 'break' && rule.usesPath) pathVariables(st)
    switch (rule.kind) {
      case 'return':
        // ngx_http_send_response sets the status before the text is built: $status reads it.
        st.returnStatus = rule.status
        return doReturn(st, rule.status, rule.text ? expand(rule.text, st) : undefined)
      case 'set':
        setVariable(st, rule.name, expand(rule.value, st))
        break
      case 'break':
        return 'break'
      case 'if': {
        let ok = test(st, rule.cond, cache)
        if (typeof ok !== 'boolean') ok = await ok
        if (!ok) break
        // A true `if` in a location makes its block the request's configuration (nginx sets
        // r->loc_conf to it): what follows, content included, uses it.
        if (rule.conf) st.conf = rule.conf
        const f = await run(st, rule.body, cache, changed)
        if (f !== 'on') return f
        break
      }
      case 'rewrite': {
        // The rewrite module's regexes (rewrite and if) forget $1..$9 before they run, matched
        // or not (nginx 1.22 answers "" for a location's $1 after a failed `if ($x ~ (y))`).
        st.captures = undefined
        const m = regexExec(rule.re, st.uri)
        if (!m) break
        captured(st, m)
        const out = expand(rule.replacement, st)
        const redirect = /^(https?:\/\/|\$scheme)/.test(out) || rule.flag === 'redirect' || rule.flag === 'permanent'
        if (redirect) {
          // ngx_http_script_regex_end_code: a trailing `?` drops the request's arguments,
          // otherwise they follow the replacement's own (after `&`) or stand alone (after `?`).
          let loc = out
          if (out.endsWith('?')) loc = out.slice(0, -1)
          else if (st.args) loc += `${out.includes('?') ? '&' : '?'}${st.args}`
          sendRedirect(st, rule.flag === 'permanent' ? 301 : 302, loc)
          return 'done'
        }
        const q = out.indexOf('?')
        if (q >= 0) {
          const newArgs = out.slice(q + 1)
          if (newArgs.endsWith('?')) st.args = newArgs.slice(0, -1)
          else st.args = st.args ? (newArgs ? `${newArgs}&${st.args}` : st.args) : newArgs
          st.uri = out.slice(0, q)
        } else st.uri = out
        st.uriChanged = true
        changed.uri = true
        if (rule.flag === 'last') return 'last'
        if (rule.flag === 'break') return 'break'
        break
      }
    }
  }
  return 'on'
}

/**
 * An `if` condition: a variable is false when "" or "0"; `=` compares exactly; a regex match
 * sets $1..$9 for what follows; file tests stat asynchronously (through open_file_cache's cache,
 * as nginx's go through ngx_open_cached_file).
 */
function test(st: RequestState, c: IfCondition, cache: FileCache): boolean | Promise<boolean> {
  switch (c.kind) {
    case 'var': {
      const v = expand(c.value, st)
      return v !== '' && v !== '0'
    }
    case 'eq':
      return (expand(c.value, st) === expand(c.other, st)) !== c.negate
    case 'regex': {
      const subject = expand(c.value, st)
      st.captures = undefined
      const m = regexExec(c.re, subject)
      if (m) captured(st, m)
      return (m !== null) !== c.negate
    }
    case 'file':
      return fileTest(expand(c.path, st), c.test, cache).then((ok) => ok !== c.negate)
  }
}

async function fileTest(path: string, kind: 'f' | 'd' | 'e' | 'x', cache: FileCache): Promise<boolean> {
  if (path === '' || path.includes('\0')) return false
  if (kind === 'x') {
    // ngx_is_exec: the owner's execute bit.
    const s = await stat(path).catch(() => undefined)
    return s !== undefined && (s.mode & 0o100) !== 0
  }
  const info = await cache.stat(path)
  if (info instanceof Error) return false
  return kind === 'e' || info.kind === (kind === 'f' ? 'file' : 'dir')
}

/** $document_root and $request_filename for the current location and URI (ngx_http_map_uri_to_path). */
function pathVariables(st: RequestState): void {
  const c = st.conf
  if (c.alias) {
    const alias = expand(c.alias, st)
    st.documentRoot = alias
    st.requestFilename = c.aliasRegex ? alias : alias + st.uri.slice(c.aliasPrefix.length)
    return
  }
  const root = expand(c.root, st)
  st.documentRoot = root
  st.requestFilename = root + st.uri
}

/** `return`: 444 closes, redirects carry Location, a text is the body, a bare error code goes to error_page. */
function doReturn(st: RequestState, status: number, text: string | undefined): 'done' | number {
  if (status === 444) {
    st.res.destroy()
    return 'done'
  }
  // ngx_http_script_return_code: below 400 (or with a text) ngx_http_send_response answers;
  // a redirect without a URL still gets its (empty) Location.
  // ngx_http_send_response: a redirect sets the Location and finalizes with its status, so an
  // error_page for it applies (and the page's answer keeps that Location, as nginx's does).
  if (status === 301 || status === 302 || status === 303 || status === 307 || status === 308) {
    st.location = text ?? ''
    return status
  }
  if (text === undefined && status >= 400) return status
  // Inside an error page the answer keeps the error's status (ngx_http_send_header applies r->err_status).
  const code = st.errorStatus ?? status
  const body = text
  const headers = baseHeaders()
  // nginx's header filter drops the type of a 204.
  if (code !== 204) headers.push('Content-Type', contentTypeFor(st.uri, st.conf))
  sendWhole(st, code, finishHeaders(st, code, headers), body, statusLineReason(code), { ordered: true })
  return 'done'
}
