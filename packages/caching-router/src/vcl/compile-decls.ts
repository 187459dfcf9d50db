import { Acl, aclRule, parseIp } from './acl.js'
import type { AclDecl, BackendDecl, DirectorDecl, Expr, Field, ProbeDecl } from './ast.js'
import { compileExpr, type ExprEnv } from './compile-expr.js'
import type { VclContext } from './context.js'
import { Backend, type ProbeOptions } from './directors.js'
import { Director, type VdirKind } from './vdir-director.js'
import { spanOf, type Token } from './lexer.js'
import { type Span, VclError } from './source.js'
import type { VclType } from './types.js'

const BACKEND_FIELDS: Record<string, VclType | 'PROBE'> = {
  host: 'STRING',
  port: 'STRING',
  path: 'STRING',
  host_header: 'STRING',
  connect_timeout: 'DURATION',
  first_byte_timeout: 'DURATION',
  between_bytes_timeout: 'DURATION',
  max_connections: 'INT',
  probe: 'PROBE',
  proxy_header: 'INT',
}

const PROBE_FIELDS: Record<string, VclType> = {
  url: 'STRING',
  request: 'STRING',
  expected_response: 'INT',
  timeout: 'DURATION',
  interval: 'DURATION',
  window: 'INT',
  threshold: 'INT',
  initial: 'INT',
}

/** Checks a field list against the allowed names, rejecting unknown and repeated ones as VCC does. */
function fieldMap(fields: Field[], allowed: Record<string, unknown>, start: Token, what: string): Map<string, Field> {
  const seen = new Map<string, Field>()
  const context = { note: `In ${what} specification starting at:`, span: spanOf(start) }
  for (const f of fields) {
    const name = f.name.value
    if (!(name in allowed)) throw new VclError(`Unknown field: '${name}' at`, spanOf(f.name), context)
    if (seen.has(name)) throw new VclError(`Field '${name}' redefined at:`, spanOf(f.name), context)
    seen.set(name, f)
  }
  return seen
}

function constant(f: Field, type: VclType, env: ExprEnv): unknown {
  if (Array.isArray(f.value)) throw new VclError(`Expected a ${type} value`, spanOf(f.name))
  const c = compileExpr(f.value as Expr, env, type)
  if (c.constant === undefined) throw new VclError(`Expected a constant ${type}`, spanOf(f.name))
  if (type === 'STRING' && f.more.length > 0) return [c.constant, ...f.more.map((t) => t.value)]
  return c.constant
}

export function compileProbe(fields: Field[], start: Token, env: ExprEnv): ProbeOptions {
  const m = fieldMap(fields, PROBE_FIELDS, start, 'probe')
  const get = <T>(name: string, fallback: T): T => {
    const f = m.get(name)
    return f ? (constant(f, PROBE_FIELDS[name] as VclType, env) as T) : fallback
  }
  if (m.has('url') && m.has('request')) {
    throw new VclError("Only one of '.url' or '.request' may be specified", spanOf((m.get('request') as Field).name))
  }
  const window = get('window', 8)
  const threshold = get('threshold', 3)
  if (window > 64) throw new VclError('Must be 64 or less', spanOf((m.get('window') as Field).name))
  if (threshold > window) {
    throw new VclError('Threshold must not be greater than window', spanOf((m.get('threshold') ?? m.get('window') ?? { name: start }).name))
  }
  const request = m.get('request')
  let raw: string | undefined
  if (request) {
    const lines = constant(request, 'STRING', env)
    // varnish joins the .request strings with CRLF and ends the head with an empty line.
    raw = `${(Array.isArray(lines) ? lines : [lines]).join('\r\n')}\r\n\r\n`
  }
  const probe: ProbeOptions = {
    url: get('url', '/'),
    expectedResponse: get('expected_response', 200),
    timeout: get('timeout', 2),
    interval: get('interval', 5),
    window,
    threshold,
    initial: get('initial', threshold - 1),
  }
  return raw === undefined ? probe : { ...probe, request: raw }
}

/**
 * `.host` as varnishd's VSS_Resolver reads it (vss.c vss_parse): `host`, `host port`,
 * `host:port` (one colon), `[v6]` or `[v6]:port`; a port in the string wins over `.port`.
 * varnishtest's `${bad_backend}` is `127.0.0.1 PORT`.
 */
export function splitHostPort(text: string): { host: string; port?: string } {
  const v6 = /^\[([^\]]*)\](?:[: ](.*))?$/.exec(text)
  if (v6) return v6[2] ? { host: v6[1] as string, port: v6[2] } : { host: v6[1] as string }
  const sp = text.indexOf(' ')
  if (sp !== -1) return { host: text.slice(0, sp), port: text.slice(sp + 1).trim() }
  const colon = text.indexOf(':')
  if (colon !== -1 && colon === text.lastIndexOf(':')) return { host: text.slice(0, colon), port: text.slice(colon + 1) }
  return { host: text }
}

function checkPort(text: string, at: Token, context: { note: string; span: Span }): number {
  // varnish resolves service names too; we only take numbers, which is what configs use.
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw new VclError(`Backend port '${text}' is not a number between 1 and 65535`, spanOf(at), context)
  }
  return Number(text)
}

export function compileBackend(d: BackendDecl, probes: ReadonlyMap<string, ProbeOptions>, env: ExprEnv): Backend {
  // The none backend is never healthy: a request sent to it fails as varnishd's "No backend".
  if (d.none) return new Backend({ name: d.name.value, host: '0.0.0.0', port: 0, none: true })
  const m = fieldMap(d.fields, BACKEND_FIELDS, d.keyword, 'backend')
  const context = { note: 'In backend specification starting at:', span: spanOf(d.keyword) }
  const host = m.get('host')
  const pathField = m.get('path')
  if (!host && !pathField) throw new VclError('Expected .host or .path.', spanOf(d.name), context)
  let path: string | undefined
  if (pathField) {
    if (host) {
      const [later, earlier] = host.name.offset > pathField.name.offset ? [host, pathField] : [pathField, host]
      throw new VclError('Address redefinition at:', spanOf(later.name), { note: 'Previous definition:', span: spanOf(earlier.name) })
    }
    path = constant(pathField, 'STRING', env) as string
    // vcc_backend.c: a Unix socket's path must be absolute (the child may chdir).
    if (!path.startsWith('/')) throw new VclError('Backend path: Must be an absolute path:', spanOf(pathField.name))
  }
  const given = host ? splitHostPort(constant(host, 'STRING', env) as string) : { host: '0.0.0.0', port: '0' }
  const hostValue = given.host
  const portField = m.get('port')
  let port = 80
  if (path !== undefined) port = 0
  else if (given.port !== undefined) port = checkPort(given.port, (host as Field).name, context)
  else if (portField) {
    const p = Array.isArray(portField.value) ? undefined : compileExpr(portField.value as Expr, env)
    port = checkPort(String(p?.constant ?? ''), portField.name, context)
  }
  const dur = (name: string): number | undefined => {
    const f = m.get(name)
    return f ? (constant(f, 'DURATION', env) as number) : undefined
  }
  let probe: ProbeOptions | undefined
  const probeField = m.get('probe')
  if (probeField) {
    if (Array.isArray(probeField.value)) probe = compileProbe(probeField.value, probeField.name, env)
    else {
      const v = probeField.value as Expr
      const name = v.kind === 'ident' ? v.token.value : ''
      probe = probes.get(name)
      if (!probe) throw new VclError(`Symbol not found: '${name}'`, spanOf(v.kind === 'ident' ? v.token : probeField.name), context)
      env.markUsed('probe', name)
    }
  } else if (probes.has('default')) {
    // vcc_backend.c: a probe named `default` polls every backend that names none.
    probe = probes.get('default')
    env.markUsed('probe', 'default')
  }
  const maxConnections = m.get('max_connections')
  const hostHeader = m.get('host_header')
  const connectTimeout = dur('connect_timeout')
  const firstByteTimeout = dur('first_byte_timeout')
  const betweenBytesTimeout = dur('between_bytes_timeout')
  return new Backend({
    name: d.name.value,
    host: hostValue,
    port,
    ...(path !== undefined ? { path } : {}),
    ...(hostHeader ? { hostHeader: constant(hostHeader, 'STRING', env) as string } : {}),
    ...(connectTimeout !== undefined ? { connectTimeout } : {}),
    ...(firstByteTimeout !== undefined ? { firstByteTimeout } : {}),
    ...(betweenBytesTimeout !== undefined ? { betweenBytesTimeout } : {}),
    ...(maxConnections ? { maxConnections: constant(maxConnections, 'INT', env) as number } : {}),
    ...(probe ? { probe } : {}),
  })
}

/**
 * Host names in ACLs stand for all their addresses, as varnishd resolves them at compile time.
 * `hosts` holds the names loadVclFile() resolved; `localhost` is known without asking DNS.
 */
export function compileAcl(d: AclDecl, hosts: ReadonlyMap<string, readonly string[]>): Acl {
  return new Acl(
    d.name.value,
    d.entries.flatMap((e) => {
      const name = e.address.value
      const addresses = parseIp(name) ? [name] : (hosts.get(name) ?? (name === 'localhost' ? ['127.0.0.1', '::1'] : undefined))
      if (!addresses) throw new VclError(`DNS lookup(${name}): not resolved (load the VCL with loadVclFile())`, spanOf(e.address))
      return addresses.map((a) => {
        const rule = aclRule(a, e.mask ? Number(e.mask.value) : undefined, e.negated)
        if (typeof rule === 'string') throw new VclError(rule, spanOf(e.address))
        return rule
      })
    }),
  )
}

const LEGACY_KINDS: Record<string, VdirKind> = {
  'round-robin': 'round_robin',
  random: 'random',
  fallback: 'fallback',
  client: 'hash',
  hash: 'hash',
}

// varnish 3's client director hashes client.identity; its hash director the object's hash,
// which for the default vcl_hash is URL plus Host.
const KEYS: Record<string, (ctx: VclContext) => string> = {
  client: (ctx) => ctx.clientIdentity ?? ctx.client.address,
  hash: (ctx) => `${ctx.req.url}${ctx.req.http.get('host') ?? ctx.local.address}`,
}

/**
 * varnish 3's `director` declarations, as the directors vmod's objects they became in 4.0.
 * Inline member backends (`.backend = { .host = ...; }`) get the name `director[i]`.
 */
export function compileLegacyDirector(
  d: DirectorDecl,
  probes: ReadonlyMap<string, ProbeOptions>,
  env: ExprEnv,
): { director: Director; inline: Backend[] } {
  const type = d.type.value
  const kind = LEGACY_KINDS[type]
  if (!kind) throw new VclError(`Unknown director type '${type}' (caching-router has round-robin, random, client, hash and fallback)`, spanOf(d.type))
  fieldMap(d.fields, { retries: 'INT', quorum: 'STRING' }, d.keyword, 'director')
  const director = new Director(d.name.value, kind, { keyOf: KEYS[type] })
  const inline: Backend[] = []
  d.members.forEach((m, i) => {
    const fields = fieldMap(m.fields, { backend: 'BACKEND', weight: 'REAL' }, m.start, 'director member')
    const b = fields.get('backend')
    if (!b) throw new VclError("Expected '.backend' in a director member", spanOf(m.start))
    let backend: Backend | undefined
    if (Array.isArray(b.value)) {
      const name = { ...d.name, value: `${d.name.value}[${i}]` }
      backend = compileBackend({ kind: 'backend', keyword: m.start, name, fields: b.value }, probes, env)
      inline.push(backend)
    } else {
      backend = compileExpr(b.value as Expr, env, 'BACKEND').constant as Backend
    }
    const w = fields.get('weight')
    director.addBackend(backend, w ? (constant(w, 'REAL', env) as number) : 1)
  })
  return { director, inline }
}

export function isProbe(d: { kind: string }): d is ProbeDecl {
  return d.kind === 'probe'
}
