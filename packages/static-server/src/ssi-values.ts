import { type BoundedRegex, compileBoundedPcre, RegexCompileError } from '@edgestack/common'
import { BUILTIN } from './config/variable-names.js'
import { RegexMatchFailed, regexExec } from './regex-match.js'
import type { RequestState } from './request-state.js'
import { strftime } from './strftime.js'

/**
 * What the SSI filter keeps for the main request and every subrequest of it (nginx keeps it in
 * the main request's context): the variables `set` and `include set=` wrote, the blocks, and
 * the captures of the last `if` regex.
 */
export class SsiShared {
  readonly variables = new Map<string, string>()
  readonly blocks: { name: string; text: string[] }[] = []
  captures: readonly (string | undefined)[] = []
  /** Subrequests started for this client request so far (ssi-document.ts bounds them). */
  subrequests = 0

  /** `abort` ends the client's answer where it stands (nginx finalizing the main request with an error). */
  constructor(readonly abort: () => void) {}
}

/** An evaluation's failure: logged in nginx's words, answered with the error text. */
export const SSI_ERROR = Symbol('ssi error')

/** What a value is read with: the document's request, the shared state and its timefmt. */
export interface SsiScope {
  readonly st: RequestState
  readonly shared: SsiShared
  timefmt: string
  log(message: string): void
}

// $uri and its kin are Unicode here (decoded once as UTF-8); nginx has them as bytes.
const UNICODE = new Set(['uri', 'document_uri', 'request_filename', 'document_root', 'realpath_root'])
// ngx_http_get_variable says "not found" for these when there is nothing to give.
const ABSENT_WHEN_EMPTY = new Set([
  'remote_user',
  'content_length',
  'content_type',
  'gzip_ratio',
  'upstream_addr',
  'upstream_status',
  'upstream_response_time',
  'upstream_header_time',
  'upstream_connect_time',
  'upstream_bytes_received',
  'upstream_response_length',
  'upstream_bytes_sent',
  'proxy_protocol_addr',
  'proxy_protocol_port',
  'proxy_protocol_server_addr',
  'proxy_protocol_server_port',
])
const KNOWN = new Set([...BUILTIN, 'args', 'limit_req_status', 'limit_conn_status', 'connection_upgrade'])

/**
 * A variable as ngx_http_ssi_get_variable and then ngx_http_get_variable find it (`name`
 * lower-cased): the captures of the last `if` regex for $0..$9, the SSI variables, $date_local
 * and $date_gmt in the document's timefmt, then the request's own. undefined is nginx's
 * "not found" (echo prints its default or `(none)` then; an empty value prints nothing).
 */
export function ssiVariable(scope: SsiScope, name: string): string | undefined {
  const { st, shared } = scope
  if (name.length === 1 && name >= '0' && name <= '9') {
    const i = Number(name)
    if (i < shared.captures.length) return shared.captures[i] ?? ''
  }
  const own = shared.variables.get(name)
  if (own !== undefined) return own
  if (name === 'date_local' || name === 'date_gmt') return dateVariable(scope.timefmt, name === 'date_local')
  return requestVariable(st, name)
}

/** $date_local / $date_gmt: `%s` is the seconds since the epoch, anything else goes to strftime. */
export function dateVariable(timefmt: string, local: boolean): string {
  const now = Math.floor(Date.now() / 1000)
  return timefmt === '%s' ? String(now) : strftime(timefmt, now, local)
}

function requestVariable(st: RequestState, name: string): string | undefined {
  if (name.length === 1 && name >= '0' && name <= '9') return st.captures?.[Number(name)] ?? undefined
  if (name.startsWith('http_')) return st.req.header(name.slice(5).replaceAll('_', '-'))
  if (name.startsWith('arg_')) {
    const key = name.slice(4)
    for (const pair of st.args.split('&')) {
      const eq = pair.indexOf('=')
      if ((eq < 0 ? pair : pair.slice(0, eq)).toLowerCase() === key) return eq < 0 ? '' : pair.slice(eq + 1)
    }
    return undefined
  }
  if (name.startsWith('cookie_') || name.startsWith('upstream_http_') || name.startsWith('upstream_cookie_')) {
    const v = st.get(name)
    return v === '' ? undefined : v
  }
  if (name.startsWith('sent_http_')) return undefined
  // ngx_http_variable_request: no query at all is "not found" (a bare `?` gives an empty one).
  if ((name === 'args' || name === 'query_string') && st.args === '' && (st.isSubrequest || !st.req.target.includes('?'))) return undefined
  if (st.server.userVars?.names.has(name)) return st.get(name)
  if (!KNOWN.has(name)) return undefined
  const v = st.get(name)
  if (v === '' && ABSENT_WHEN_EMPTY.has(name)) return undefined
  return UNICODE.has(name) ? Buffer.from(v, 'utf8').toString('latin1') : v
}

/** The directory part of the document's URI (with its slash), for relative include paths. */
function uriPrefix(st: RequestState): string {
  const uri = Buffer.from(st.uri, 'utf8').toString('latin1')
  return uri.slice(0, uri.lastIndexOf('/') + 1)
}

const NAME = /[A-Za-z0-9_]/

/**
 * ngx_http_ssi_evaluate_string: `$name` and `${name}` replaced (a variable not found gives
 * nothing), a backslash before `\`, `'`, `"` or `$` dropped (before anything else kept).
 * `prefix` is include's: a path not starting with `/` is taken from the document's directory.
 */
export function evaluate(scope: SsiScope, text: string, prefix = false): string | typeof SSI_ERROR {
  const parts: string[] = []
  const hasVariables = text.includes('$')
  let i = 0
  while (i < text.length) {
    if (text[i] === '$') {
      if (++i === text.length) return invalidName(scope, text)
      let bracket = false
      if (text[i] === '{') {
        bracket = true
        if (++i === text.length) return invalidName(scope, text)
      }
      const start = i
      let closed = false
      for (; i < text.length; i++) {
        const c = text[i] as string
        if (c === '}' && bracket) {
          closed = true
          break
        }
        if (!NAME.test(c)) break
      }
      const name = text.slice(start, i)
      if (closed) {
        i++
        bracket = false
      }
      if (bracket) {
        scope.log(`the closing bracket in "${name}" variable is missing`)
        return SSI_ERROR
      }
      if (name === '') return invalidName(scope, text)
      const v = ssiVariable(scope, name.toLowerCase())
      if (v !== undefined) parts.push(v)
      continue
    }
    let lit = ''
    let quoted = false
    for (; i < text.length; i++) {
      const c = text[i] as string
      if (!quoted) {
        if (c === '\\') {
          quoted = true
          continue
        }
        if (c === '$' && hasVariables) break
      } else {
        quoted = false
        if (c !== '\\' && c !== "'" && c !== '"' && c !== '$') lit += '\\'
      }
      lit += c
    }
    parts.push(lit)
  }
  let out = parts.join('')
  if (prefix) {
    // Without variables the text's own first byte decides (an empty path gets the prefix too);
    // with them, the first part that is not empty.
    const first = hasVariables ? parts.find((p) => p !== '') : text
    if (hasVariables ? first !== undefined && !first.startsWith('/') : !text.startsWith('/')) out = uriPrefix(scope.st) + out
  }
  return out
}

function invalidName(scope: SsiScope, text: string): typeof SSI_ERROR {
  scope.log(`invalid variable name in "${text}"`)
  return SSI_ERROR
}

/** Patterns of `if expr` are compiled on first use and kept (nginx compiles them on every match). */
const REGEXES = new Map<string, BoundedRegex | string>()
const REGEXES_MAX = 256

/**
 * ngx_http_ssi_if's expression: `left`, `left = right`, `left != right`, `left = /regex/`.
 * The left side is the leading run of letters, digits, `$`, `{`, `}`, `_` and quotes (letters
 * lower-cased, as nginx lower-cases them in place); each side is evaluated as a string.
 */
export function ifExpression(scope: SsiScope, expr: string): boolean | typeof SSI_ERROR {
  let p = 0
  let lowered = ''
  for (; p < expr.length; p++) {
    const c = expr[p] as string
    if (c >= 'A' && c <= 'Z') {
      lowered += c.toLowerCase()
      continue
    }
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c === '$' || c === '{' || c === '}' || c === '_' || c === '"' || c === "'") {
      lowered += c
      continue
    }
    break
  }
  const shown = lowered + expr.slice(p)
  const invalid = (): typeof SSI_ERROR => {
    scope.log(`invalid expression in "${shown}"`)
    return SSI_ERROR
  }
  while (expr[p] === ' ') p++
  const left = evaluate(scope, lowered)
  if (left === SSI_ERROR) return left
  if (p === expr.length) return left !== ''
  let negative = false
  if (expr[p] === '=') p++
  else if (expr[p] === '!' && expr[p + 1] === '=') {
    negative = true
    p += 2
  } else return invalid()
  while (expr[p] === ' ') p++
  let last = expr.length
  let regex = false
  if (p < last - 1 && expr[p] === '/') {
    if (expr[last - 1] !== '/') return invalid()
    regex = true
    last--
    p++
  } else if (p < last - 1 && expr[p] === '\\' && expr[p + 1] === '/') p++
  const right = evaluate(scope, expr.slice(p, last))
  if (right === SSI_ERROR) return right
  let equal: boolean
  if (!regex) equal = left === right
  else {
    const m = match(scope, right, left)
    if (m === SSI_ERROR) return m
    equal = m
  }
  return equal !== negative
}

function match(scope: SsiScope, pattern: string, subject: string): boolean | typeof SSI_ERROR {
  let re = REGEXES.get(pattern)
  if (re === undefined) {
    try {
      re = compileBoundedPcre(pattern)
    } catch (err) {
      if (!(err instanceof RegexCompileError)) throw err
      re = `pcre2_compile() failed: ${err.message} in "${pattern}"`
    }
    if (REGEXES.size >= REGEXES_MAX) REGEXES.delete(REGEXES.keys().next().value as string)
    REGEXES.set(pattern, re)
  }
  if (typeof re === 'string') {
    scope.log(re)
    return SSI_ERROR
  }
  let m: RegExpExecArray | null
  try {
    m = regexExec(re, subject)
  } catch (err) {
    if (!(err instanceof RegexMatchFailed)) throw err
    scope.st.alert(err.message)
    return SSI_ERROR
  }
  if (m === null) return false
  // The captures nginx keeps: up to the last group that took part.
  let n = m.length
  while (n > 1 && m[n - 1] === undefined) n--
  scope.shared.captures = m.slice(0, n)
  if (m.groups) for (const [k, v] of Object.entries(m.groups)) scope.shared.variables.set(k.toLowerCase(), v ?? '')
  return true
}

/** ngx_escape_html: the four characters HTML gives meaning to. */
export function entityEncode(s: string): string {
  return s.replace(/[<>&"]/g, (c) => (c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : '&quot;'))
}

/** ngx_escape_uri with NGX_ESCAPE_HTML (1.22): controls, space, `"`, `#`, `%`, `'`, `<`, `>` and bytes from 0x7f. */
export function urlEncode(s: string): string {
  let out = ''
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c <= 0x20 || c >= 0x7f || c === 0x22 || c === 0x23 || c === 0x25 || c === 0x27 || c === 0x3c || c === 0x3e) out += `%${c.toString(16).toUpperCase().padStart(2, '0')}`
    else out += s[i]
  }
  return out
}
