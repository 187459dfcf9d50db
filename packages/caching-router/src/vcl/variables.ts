import type { VclContext, VclHeaders, VclMessage } from './context.js'
import { berespFilters, respFilters } from './filter-lists.js'
import { BACKEND_METHODS, CLIENT_METHODS, type VclType } from './types.js'

/** A VCL variable: its type, where varnish lets it be read/set/unset, and how. */
export interface VarSpec {
  readonly name: string
  readonly type: VclType
  readonly read: readonly string[]
  readonly write: readonly string[]
  readonly unset: readonly string[]
  get(ctx: VclContext): unknown
  set?(ctx: VclContext, v: unknown): void
  clear?(ctx: VclContext): void
  /**
   * Why setting it is refused at load, when varnishd would act on it and we would not (no
   * silent no-op). With `exceptLiteral`, setting it to that literal (the behaviour we always
   * have) is allowed.
   */
  readonly unsupported?: { readonly why: string; readonly exceptLiteral?: string }
  /** Only in these VCL syntaxes (varnishd: "Only available when VCL syntax <= 4.0"). */
  readonly dialects?: readonly string[]
}

const CLIENT: readonly string[] = CLIENT_METHODS
const BACKEND: readonly string[] = BACKEND_METHODS
const BOTH: readonly string[] = [...CLIENT, ...BACKEND]
const EVERYWHERE: readonly string[] = [...BOTH, 'init', 'fini']
const PIPE_BACKEND: readonly string[] = ['pipe', ...BACKEND]
const BERESP: readonly string[] = ['backend_response', 'backend_error']
const RESP: readonly string[] = ['deliver', 'synth']
const OBJ: readonly string[] = ['hit', 'deliver']
const NONE: readonly string[] = []

type Obj = 'req' | 'bereq' | 'beresp' | 'resp' | 'obj' | 'top'

/**
 * A VCL statement failed at run time. varnish sends such values on unchecked (a long string
 * with a newline set into a header is a header injection there); we refuse them, and the
 * subroutine ends in `fail` (a 503), like other VCL failures.
 */
export class VclRuntimeError extends Error {}

const CTL_OR_SPACE = /[\x00-\x20\x7f]/
const CR_LF_NUL = /[\r\n\0]/
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const PROTO = /^HTTP\/\d\.\d$/

// Values that go on the wire must not be able to split or smuggle a message (RFC 9110 §5.5, §9.1).
const VALID: Record<string, (v: string) => boolean> = {
  url: (v) => v !== '' && !CTL_OR_SPACE.test(v),
  method: (v) => TOKEN.test(v),
  proto: (v) => PROTO.test(v),
  reason: (v) => !CR_LF_NUL.test(v),
}

function checked(name: string, key: string, v: unknown): unknown {
  const valid = VALID[key]
  if (valid && !valid(v as string)) throw new VclRuntimeError(`set ${name}: invalid value ${JSON.stringify(v)}`)
  return v
}

// The router fills only the objects of the running step; the checker guarantees access is legal.
// biome-ignore lint/suspicious/noExplicitAny: one accessor for five object shapes
const pick = (ctx: VclContext, o: Obj): any => (o === 'top' ? (ctx.top ?? ctx.req) : ctx[o])

// The req fields every request reads (builtin.vcl's vcl_recv and vcl_hash): a getter each, so
// the read is a plain property load, not a keyed load shared by every field's getter.
const REQ_GETTERS: Readonly<Record<string, (ctx: VclContext) => unknown>> = {
  method: (ctx) => ctx.req.method,
  url: (ctx) => ctx.req.url,
  proto: (ctx) => ctx.req.proto,
  esiLevel: (ctx) => ctx.req.esiLevel,
  restarts: (ctx) => ctx.req.restarts,
  backendHint: (ctx) => ctx.req.backendHint,
}

function field(name: string, o: Obj, key: string, type: VclType, read: readonly string[], write: readonly string[]): VarSpec {
  return {
    name,
    type,
    read,
    write,
    unset: NONE,
    get: (o === 'req' ? REQ_GETTERS[key] : undefined) ?? ((ctx) => pick(ctx, o)[key]),
    set: (ctx, v) => {
      pick(ctx, o)[key] = checked(name, key, v)
    },
  }
}

const SCOPES: Record<Obj, { read: readonly string[]; write: readonly string[] }> = {
  req: { read: CLIENT, write: CLIENT },
  bereq: { read: PIPE_BACKEND, write: PIPE_BACKEND },
  beresp: { read: BERESP, write: BERESP },
  resp: { read: RESP, write: RESP },
  obj: { read: ['hit'], write: NONE },
  // req_top: the top request of an ESI tree (req itself when there is none).
  top: { read: CLIENT, write: NONE },
}

const TABLE = new Map<string, VarSpec>()
function add(spec: VarSpec): void {
  TABLE.set(spec.name, spec)
}

for (const o of ['req', 'bereq'] as const) {
  const s = SCOPES[o]
  add(field(`${o}.method`, o, 'method', 'STRING', s.read, s.write))
  add(field(`${o}.url`, o, 'url', 'STRING', s.read, s.write))
}
for (const o of ['req', 'bereq', 'beresp', 'resp', 'obj'] as const) {
  add(field(`${o}.proto`, o, 'proto', 'STRING', SCOPES[o].read, SCOPES[o].write))
}
for (const o of ['beresp', 'resp', 'obj'] as const) {
  add(field(`${o}.status`, o, 'status', 'INT', SCOPES[o].read, SCOPES[o].write))
  add(field(`${o}.reason`, o, 'reason', 'STRING', SCOPES[o].read, SCOPES[o].write))
}
add(field('req.backend_hint', 'req', 'backendHint', 'BACKEND', CLIENT, CLIENT))
add(field('req.restarts', 'req', 'restarts', 'INT', CLIENT, NONE))
// req->digest as a BLOB (vcl_var.rst: after vcl_hash; bereq.hash on the pipe and backend side),
// for `directors.shard().backend(by=BLOB, key_blob=...)`.
add({ name: 'req.hash', type: 'BLOB', read: ['hit', 'miss', 'pass', 'purge', 'deliver'], write: NONE, unset: NONE, get: (ctx) => ctx.digest?.() })
add({ name: 'bereq.hash', type: 'BLOB', read: PIPE_BACKEND, write: NONE, unset: NONE, get: (ctx) => ctx.digest?.() })
add(field('req.xid', 'req', 'xid', 'STRING', CLIENT, NONE))
add(field('req.esi_level', 'req', 'esiLevel', 'INT', CLIENT, NONE))
add(field('req.is_hitmiss', 'req', 'isHitmiss', 'BOOL', CLIENT, NONE))
add(field('req.is_hitpass', 'req', 'isHitpass', 'BOOL', CLIENT, NONE))
add({ ...field('req.ttl', 'req', 'ttl', 'DURATION', CLIENT, CLIENT), get: (ctx) => ctx.req.ttl ?? -1 })
add({ ...field('req.grace', 'req', 'grace', 'DURATION', CLIENT, CLIENT), get: (ctx) => ctx.req.grace ?? -1 })
add(field('req.hash_always_miss', 'req', 'hashAlwaysMiss', 'BOOL', ['recv'], ['recv']))
add(field('req.hash_ignore_busy', 'req', 'hashIgnoreBusy', 'BOOL', ['recv'], ['recv']))

add(field('bereq.backend', 'bereq', 'backend', 'BACKEND', PIPE_BACKEND, PIPE_BACKEND))
add(field('bereq.uncacheable', 'bereq', 'uncacheable', 'BOOL', BACKEND, NONE))
add(field('bereq.xid', 'bereq', 'xid', 'STRING', PIPE_BACKEND, NONE))
add(field('bereq.retries', 'bereq', 'retries', 'INT', BACKEND, NONE))
add(field('bereq.is_bgfetch', 'bereq', 'isBgfetch', 'BOOL', BACKEND, NONE))
add(field('bereq.connect_timeout', 'bereq', 'connectTimeout', 'DURATION', PIPE_BACKEND, PIPE_BACKEND))
add(field('bereq.first_byte_timeout', 'bereq', 'firstByteTimeout', 'DURATION', BACKEND, BACKEND))
add(field('bereq.between_bytes_timeout', 'bereq', 'betweenBytesTimeout', 'DURATION', BACKEND, BACKEND))
add({
  name: 'bereq.body',
  type: 'BODY',
  read: NONE,
  write: NONE,
  unset: ['backend_fetch'],
  get: () => undefined,
  clear: (ctx) => {
    if (ctx.bereq) ctx.bereq.bodyUnset = true
  },
})

for (const key of ['ttl', 'grace', 'keep'] as const) add(field(`beresp.${key}`, 'beresp', key, 'DURATION', BERESP, BERESP))
add(field('beresp.uncacheable', 'beresp', 'uncacheable', 'BOOL', BERESP, BERESP))
// do_stream = false holds a stored object until complete (cache-fill.ts; README).
add(field('beresp.do_stream', 'beresp', 'doStream', 'BOOL', BERESP, BERESP))
// Compression (src/gzip/): applied as the body is stored, with http_gzip_support on.
add(field('beresp.do_gzip', 'beresp', 'doGzip', 'BOOL', BERESP, BERESP))
add(field('beresp.do_gunzip', 'beresp', 'doGunzip', 'BOOL', BERESP, BERESP))
// ESI (src/esi/): parsed when the object is stored, processed when it is delivered.
add(field('beresp.do_esi', 'beresp', 'doEsi', 'BOOL', BERESP, BERESP))
add({ ...field('resp.do_esi', 'resp', 'doEsi', 'BOOL', RESP, RESP), dialects: ['4.1'] })
add(field('obj.can_esi', 'obj', 'canEsi', 'BOOL', OBJ, NONE))
add({ ...field('req.esi', 'req', 'esi', 'BOOL', CLIENT, CLIENT), dialects: ['3.0', '4.0'] })
for (const key of ['method', 'url', 'proto'] as const) add(field(`req_top.${key}`, 'top', key, 'STRING', CLIENT, NONE))
// t_req: fixed when the head is in, kept across restarts; an include's is its top request's.
add(field('req.time', 'req', 'time', 'TIME', CLIENT, NONE))
add(field('req_top.time', 'top', 'time', 'TIME', CLIENT, NONE))
add(field('beresp.age', 'beresp', 'age', 'DURATION', BERESP, NONE))
add(field('beresp.was_304', 'beresp', 'was304', 'BOOL', BERESP, NONE))
add(field('beresp.backend.name', 'beresp', 'backendName', 'STRING', BERESP, NONE))
add(field('beresp.backend', 'beresp', 'backend', 'BACKEND', BERESP, NONE))
add({ ...field('beresp.body', 'beresp', 'body', 'BODY', NONE, ['backend_error']), unset: NONE })
add({ ...field('resp.body', 'resp', 'body', 'BODY', NONE, ['synth']), unset: NONE })
add(field('resp.is_streaming', 'resp', 'isStreaming', 'BOOL', RESP, NONE))
// The filter lists varnishd would use (vcl/filter-lists.ts); ours follow do_esi, do_gzip and
// do_gunzip and cannot be rearranged, so setting them is refused rather than ignored.
const FILTERS_FIXED = 'setting a filter list is not supported (the filters follow beresp.do_esi, do_gzip and do_gunzip)'
add({ name: 'beresp.filters', type: 'STRING', read: ['backend_response'], write: ['backend_response'], unset: NONE, get: berespFilters, unsupported: { why: FILTERS_FIXED } })
add({ name: 'resp.filters', type: 'STRING', read: RESP, write: RESP, unset: NONE, get: respFilters, unsupported: { why: FILTERS_FIXED } })

for (const key of ['ttl', 'grace', 'keep', 'age'] as const) add(field(`obj.${key}`, 'obj', key, 'DURATION', OBJ, NONE))
add(field('obj.hits', 'obj', 'hits', 'INT', OBJ, NONE))
add(field('obj.uncacheable', 'obj', 'uncacheable', 'BOOL', OBJ, NONE))
add(field('obj.time', 'obj', 'time', 'TIME', OBJ, NONE))

const ip = (name: string, get: (ctx: VclContext) => unknown): VarSpec => ({ name, type: 'IP', read: BOTH, write: NONE, unset: NONE, get })
add(ip('client.ip', (ctx) => ctx.client))
add(ip('server.ip', (ctx) => ctx.server ?? ctx.local))
add(ip('local.ip', (ctx) => ctx.local))
add(ip('remote.ip', (ctx) => ctx.remote))
add({ name: 'now', type: 'TIME', read: EVERYWHERE, write: NONE, unset: NONE, get: (ctx) => ctx.now() })
add({ name: 'server.hostname', type: 'STRING', read: EVERYWHERE, write: NONE, unset: NONE, get: (ctx) => ctx.serverHostname })
add({ name: 'server.identity', type: 'STRING', read: EVERYWHERE, write: NONE, unset: NONE, get: (ctx) => ctx.serverIdentity })
add({
  name: 'client.identity',
  type: 'STRING',
  read: BOTH,
  write: CLIENT,
  unset: NONE,
  get: (ctx) => ctx.clientIdentity ?? ctx.client.address,
  set: (ctx, v) => {
    ctx.clientIdentity = v as string
  },
})

const HTTP_PREFIXES: Record<string, Obj> = {
  'req.http.': 'req',
  'bereq.http.': 'bereq',
  'beresp.http.': 'beresp',
  'resp.http.': 'resp',
  'obj.http.': 'obj',
  'req_top.http.': 'top',
}

/** varnish 3 names that became other names in 4.0 (the article's file uses `req.backend`). */
const RENAMED_IN_4: Record<string, string> = {
  'req.request': 'req.method',
  'bereq.request': 'bereq.method',
  'req.backend': 'req.backend_hint',
  'beresp.response': 'beresp.reason',
  'resp.response': 'resp.reason',
  'obj.response': 'obj.reason',
}

/** varnish 3 variables with no 4.x name: `req.backend.healthy` is std.healthy(req.backend_hint). */
const LEGACY_ONLY = new Map<string, VarSpec>([
  [
    'req.backend.healthy',
    { name: 'req.backend.healthy', type: 'BOOL', read: CLIENT, write: NONE, unset: NONE, get: (ctx) => ctx.req.backendHint?.healthy() ?? false },
  ],
])

/** Every fixed variable name the compiler knows (the `*.http.*` families aside). */
export function variableNames(): string[] {
  return [...TABLE.keys(), ...LEGACY_ONLY.keys()]
}

/**
 * Finds a variable by name. In the 3.0 dialect, old names map to their 4.x meaning, and in
 * vcl_error (now vcl_synth) `obj.*` is the synthetic response, `resp.*` in 4.x.
 */
export function lookupVariable(name: string, dialect: string, method?: string): VarSpec | undefined {
  let n = name
  if (dialect === '3.0') {
    n = RENAMED_IN_4[n] ?? n
    const legacy = LEGACY_ONLY.get(n)
    if (legacy) return legacy
    if (method === 'synth' && n.startsWith('obj.')) n = `resp.${n.slice(4)}`
    // varnish 3's vcl_fetch saw the backend request as req.*; 4.x calls it bereq.*.
    if (method?.startsWith('backend_') && n.startsWith('req.')) n = `be${n}`
  }
  const fixed = TABLE.get(n)
  if (fixed) return fixed.dialects === undefined || fixed.dialects.includes(dialect) ? fixed : undefined
  for (const [prefix, o] of Object.entries(HTTP_PREFIXES)) {
    if (n.length > prefix.length && n.slice(0, prefix.length).toLowerCase() === prefix) {
      const header = n.slice(prefix.length)
      const key = header.toLowerCase()
      const scope = SCOPES[o]
      const headers = (ctx: VclContext): VclHeaders => (pick(ctx, o) as VclMessage).http
      return {
        name: n,
        type: 'HEADER',
        read: scope.read,
        write: scope.write,
        unset: scope.write,
        // req.http.X is read on every request (builtin.vcl reads Host, Authorization, Cookie).
        get: o === 'req' ? (ctx) => ctx.req.http.getLower(key) : (ctx) => headers(ctx).getLower(key),
        set: (ctx, v) => {
          if (CR_LF_NUL.test(v as string)) throw new VclRuntimeError(`set ${n}: value contains CR, LF or NUL`)
          headers(ctx).set(header, v as string)
        },
        clear: (ctx) => headers(ctx).unset(header),
      }
    }
  }
  return undefined
}
