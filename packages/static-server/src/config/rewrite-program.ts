import { compileTemplate, type Template } from '../variables.js'
import type { Ctx, } from './directive-values.js'
import { NginxConfError } from './errors.js'
import type { IfCondition, LocationConf, RewriteRule } from './model.js'
import type { Directive } from './parse-tree.js'
import { compileRegex, defineVariable } from './variable-names.js'

/** Builds the configuration of a location-level `if` block from the enclosing location's. */
export type MergeIf = (parent: LocationConf, block: Directive[]) => LocationConf

/**
 * A block's ngx_http_rewrite_module directives in the order written: nginx compiles rewrite,
 * return, set, break and if of one level into a single code array and runs it top to bottom.
 * `conf` is the enclosing location's configuration: a location-level `if` gets its own, merged
 * from it (nginx's implicit nested location); a server-level one (conf undefined) does not.
 */
export function rewriteProgram(ctx: Ctx, block: Directive[], conf: LocationConf | undefined, mergeIf: MergeIf): RewriteRule[] {
  const out: RewriteRule[] = []
  for (const d of block) {
    switch (d.name) {
      case 'return':
        out.push(returnRule(d))
        break
      case 'rewrite': {
        const flag = (d.args[2] ?? '') as 'last' | 'break' | 'redirect' | 'permanent' | ''
        if (!['', 'last', 'break', 'redirect', 'permanent'].includes(flag)) throw new NginxConfError(`invalid parameter "${flag}"`, d.file, d.line, d.name)
        const replacement = template(d, d.args[1] as string)
        out.push({ kind: 'rewrite', re: compileRegex(ctx, d, d.args[0] as string, ''), replacement, flag, usesPath: usesPath(replacement) })
        break
      }
      case 'set': {
        const name = defineVariable(ctx, d, d.args[0] as string)
        const value = template(d, d.args[1] as string)
        out.push({ kind: 'set', name, value, usesPath: usesPath(value) })
        break
      }
      case 'break':
        out.push({ kind: 'break' })
        break
      case 'if': {
        const cond = condition(ctx, d)
        const inner = d.block ?? []
        let ifConf: LocationConf | undefined
        if (conf) {
          ifConf = mergeIf(conf, inner)
          const pp = inner.find((x) => x.name === 'proxy_pass')
          if (pp && ifConf.proxyPass) {
            if (ifConf.proxyPass.uri !== undefined) {
              throw new NginxConfError(
                '"proxy_pass" cannot have URI part in location given by regular expression, or inside named location, or inside "if" statement, or inside "limit_except" block',
                pp.file,
                pp.line,
                'proxy_pass',
              )
            }
            ifConf.proxyPass = { ...ifConf.proxyPass, locationPrefix: conf.proxyPass?.locationPrefix ?? '' }
          } else {
            // ngx_http_proxy_merge_loc_conf: an `if` block (clcf->noname) inherits proxy_pass.
            ifConf.proxyPass = conf.proxyPass
          }
          ifConf.internal = conf.internal
        }
        const cu = cond.kind === 'file' ? usesPath(cond.path) : usesPath(cond.value) || (cond.kind === 'eq' && usesPath(cond.other))
        out.push({ kind: 'if', cond, body: rewriteProgram(ctx, inner, ifConf, mergeIf), conf: ifConf, usesPath: cu })
        break
      }
    }
  }
  return out
}

/** Every location-level `if` configuration in a program (their proxy_pass upstreams need pools). */
export function ifConfs(rules: readonly RewriteRule[]): LocationConf[] {
  const out: LocationConf[] = []
  for (const r of rules) {
    if (r.kind !== 'if') continue
    if (r.conf) out.push(r.conf)
    out.push(...ifConfs(r.body))
  }
  return out
}

function returnRule(d: Directive): RewriteRule {
  const a0 = d.args[0] as string
  if (d.args.length === 1 && !/^\d+$/.test(a0)) {
    // `return URL` is a 302 to it (ngx_http_rewrite_return).
    const text = template(d, a0)
    return { kind: 'return', status: 302, text, usesPath: usesPath(text) }
  }
  const status = Number(a0)
  if (!/^\d+$/.test(a0) || status > 999) throw new NginxConfError(`invalid return code "${a0}"`, d.file, d.line, d.name)
  if (d.args[1] === undefined) return { kind: 'return', status, usesPath: false }
  const text = template(d, d.args[1])
  return { kind: 'return', status, text, usesPath: usesPath(text) }
}

/**
 * ngx_http_rewrite_if_condition: `(` and `)` may be words of their own or stuck to the first and
 * last words; `$var` alone; `$var = text` / `!=`; `$var ~ regex` / `~*` / `!~` / `!~*`;
 * `-f` / `-d` / `-e` / `-x` and their `!` forms before a path. Messages are nginx's.
 */
function condition(ctx: Ctx, d: Directive): IfCondition {
  const a = [...d.args]
  const bad = (w: string | undefined) => new NginxConfError(`invalid condition "${w ?? ''}"`, d.file, d.line, 'if')
  const first = a[0] as string
  if (!first.startsWith('(')) throw bad(first)
  if (first === '(') a.shift()
  else a[0] = first.slice(1)
  const last = a[a.length - 1]
  if (last === undefined || !last.endsWith(')')) throw bad(last)
  if (last === ')') a.pop()
  else a[a.length - 1] = last.slice(0, -1)
  const p = a[0]
  if (p === undefined) throw bad(')')
  if (p.length > 1 && p.startsWith('$')) {
    if (a.length !== 1 && a.length !== 3) throw bad(p)
    const value = template(d, p)
    if (a.length === 1) return { kind: 'var', value }
    const op = a[1] as string
    const rhs = a[2] as string
    if (op === '=' || op === '!=') return { kind: 'eq', value, other: template(d, rhs), negate: op === '!=' }
    if (op === '~' || op === '~*' || op === '!~' || op === '!~*') {
      const re = compileRegex(ctx, d, rhs, op.endsWith('*') ? 'i' : '')
      return { kind: 'regex', value, re, negate: op.startsWith('!') }
    }
    throw new NginxConfError(`unexpected "${op}" in condition`, d.file, d.line, 'if')
  }
  const m = /^(!?)-([fdex])$/.exec(p)
  if (/^!?-.$/.test(p)) {
    if (a.length !== 2) throw bad(p)
    if (!m) throw bad(p)
    return { kind: 'file', test: m[2] as 'f' | 'd' | 'e' | 'x', path: template(d, a[1] as string), negate: m[1] === '!' }
  }
  throw bad(p)
}

function template(d: Directive, text: string): Template {
  try {
    return compileTemplate(text)
  } catch (err) {
    throw new NginxConfError((err as Error).message, d.file, d.line, d.name)
  }
}

function usesPath(t: Template): boolean {
  return t.some((p) => typeof p !== 'string' && (p.v === 'request_filename' || p.v === 'document_root'))
}
