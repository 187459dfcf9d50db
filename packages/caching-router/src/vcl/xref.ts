import { spanOf, type Token } from './lexer.js'
import { type Span, VclError } from './source.js'
import { type Exec, LEGAL_RETURNS } from './types.js'

/** A use of something that only some subroutines allow, checked per calling vcl_ method. */
export interface Use {
  readonly token: Token
  readonly allowed: readonly string[]
  readonly problem: (method: string) => string
  /** Set for returns: the error then lists the method's legal returns. */
  readonly legal?: boolean
}

export interface SubInfo {
  readonly name: string
  readonly tokens: Token[]
  readonly method: string | undefined
  readonly uses: Use[]
  readonly calls: { name: string; token: Token }[]
  readonly holder: { fn: Exec }
}

type Path = { sub: SubInfo; token: Token }[]

/**
 * VCC checks each vcl_ method together with every subroutine it calls (vcc_xref.c), so a custom
 * sub may touch beresp.* only if all its callers are backend methods. Marks called subs used.
 */
export function checkMethods(subs: ReadonlyMap<string, SubInfo>, used: Set<string>): void {
  for (const info of subs.values()) {
    if (info.method) walk(subs, used, info, info.method, [], new Set())
  }
}

function walk(subs: ReadonlyMap<string, SubInfo>, used: Set<string>, info: SubInfo, method: string, path: Path, done: Set<SubInfo>): void {
  for (const use of info.uses) {
    if (use.allowed.includes(method)) continue
    const first = path[0]
    // varnishd says "from subroutine" when the use sits in a sub called by the method.
    const problem = first ? use.problem(method).replace(' in subroutine ', ' from subroutine ') : use.problem(method)
    const via = first ? `\n...in subroutine "${info.name}" called from "vcl_${method}"` : ''
    const legal = use.legal ? `\nLegal returns are: ${(LEGAL_RETURNS[method] ?? []).map((r) => `"${r}"`).join(' ')}` : ''
    const context: { note: string; span: Span } | undefined = first ? { note: `...called from "vcl_${method}"`, span: spanOf(first.token) } : undefined
    throw new VclError(`${problem}${via}${legal}`, spanOf(use.token), context)
  }
  for (const c of info.calls) {
    const target = subs.get(c.name) as SubInfo
    if (target === info || path.some((p) => p.sub === target)) {
      throw new VclError('Subroutine recurses on', spanOf(target.tokens[0] as Token), { note: `...called from "${info.name}"`, span: spanOf(c.token) })
    }
    used.add(`sub:${c.name}`)
    // A sub already checked for this method (and found free of cycles) need not be walked again.
    if (done.has(target)) continue
    walk(subs, used, target, method, [...path, { sub: info, token: c.token }], done)
  }
  done.add(info)
}

/** varnishd refuses unused subs, backends (but the first, the default), probes and ACLs (vcc_err_unref). */
export function checkUnused(
  subs: ReadonlyMap<string, SubInfo>,
  used: ReadonlySet<string>,
  declared: { backend: ReadonlyMap<string, Token>; probe: ReadonlyMap<string, Token>; acl: ReadonlyMap<string, Token> },
): void {
  for (const info of subs.values()) {
    if (info.name.startsWith('vcl_') || used.has(`sub:${info.name}`)) continue
    throw new VclError(`Unused sub ${info.name}, defined:`, spanOf(info.tokens[0] as Token))
  }
  let first = true
  for (const [name, token] of declared.backend) {
    if (!first && !used.has(`backend:${name}`)) throw new VclError(`Unused backend ${name}, defined:`, spanOf(token))
    first = false
  }
  for (const kind of ['probe', 'acl'] as const) {
    for (const [name, token] of declared[kind]) {
      if (!used.has(`${kind}:${name}`)) throw new VclError(`Unused ${kind} ${name}, defined:`, spanOf(token))
    }
  }
}
