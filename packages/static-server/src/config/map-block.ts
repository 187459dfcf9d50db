import type { BoundedRegex } from '@edgestack/common'
import { compileTemplate, type Template } from '../variables.js'
import type { Ctx } from './directive-values.js'
import { NginxConfError } from './errors.js'
import type { MapModel } from './model.js'
import type { Directive } from './parse-tree.js'
import { compileRegex, defineVariable } from './variable-names.js'

/**
 * `map SOURCE $var { ... }` read as ngx_http_map_block / ngx_http_map read it: `hostnames` and
 * `volatile` alone on a line, every other line exactly `key value;`, `default` once, `~` / `~*`
 * keys as regexes in file order, a leading `\` escaping a key that reads like a parameter,
 * exact keys hashed lower-cased (so duplicates differing only in case conflict).
 */
export function mapBlock(ctx: Ctx, d: Directive): void {
  const source = template(d, d.args[0] as string)
  const name = defineVariable(ctx, d, d.args[1] as string)
  let hostnames = false
  let volatile = false
  let dflt: Template | undefined
  const exact = new Map<string, Template>()
  const heads = new Map<string, Template>()
  const tails = new Map<string, Template>()
  const regexes: { re: BoundedRegex; value: Template }[] = []
  for (const line of d.block ?? []) {
    const words = [line.name, ...line.args]
    if (words.length === 1 && line.name === 'hostnames') {
      hostnames = true
      continue
    }
    if (words.length === 1 && line.name === 'volatile') {
      volatile = true
      continue
    }
    if (words.length !== 2) throw new NginxConfError('invalid number of the map parameters', line.file, line.line, 'map')
    const value = template(line, line.args[0] as string)
    let key = line.name
    if (key === 'default') {
      if (dflt) throw new NginxConfError('duplicate default map parameter', line.file, line.line, 'map')
      dflt = value
      continue
    }
    if (key.startsWith('~')) {
      const ci = key.startsWith('~*')
      regexes.push({ re: compileRegex(ctx, { ...line, name: 'map' }, key.slice(ci ? 2 : 1), ci ? 'i' : ''), value })
      continue
    }
    if (key.startsWith('\\')) key = key.slice(1)
    const conflict = () => new NginxConfError(`conflicting parameter "${key.toLowerCase()}"`, line.file, line.line, 'map')
    const low = key.toLowerCase()
    if (hostnames && (low.includes('*') || low.startsWith('.'))) {
      // ngx_hash_add_key(NGX_HASH_WILDCARD_KEY): `*.x` and `.x` heads, `x.*` tails, `*` nowhere else.
      if (low.startsWith('*.') && !low.slice(2).includes('*')) {
        if (heads.has(low.slice(1))) throw conflict()
        heads.set(low.slice(1), value)
      } else if (low.startsWith('.') && !low.includes('*') && low.length > 1) {
        if (heads.has(low) || exact.has(low.slice(1))) throw conflict()
        heads.set(low, value)
        exact.set(low.slice(1), value)
      } else if (low.endsWith('.*') && !low.slice(0, -2).includes('*')) {
        if (tails.has(low.slice(0, -1))) throw conflict()
        tails.set(low.slice(0, -1), value)
      } else {
        throw new NginxConfError(`invalid hostname or wildcard "${key}"`, line.file, line.line, 'map')
      }
      continue
    }
    if (exact.has(low)) throw conflict()
    exact.set(low, value)
  }
  const longest = <T extends object>(m: Map<string, Template>, k: string) =>
    [...m].sort((a, b) => b[0].length - a[0].length).map(([s, value]) => ({ [k]: s, value }) as T)
  const model: MapModel = {
    source,
    hostnames,
    volatile,
    exact,
    heads: longest(heads, 'suffix'),
    tails: longest(tails, 'prefix'),
    regexes,
    default: dflt ?? compileTemplate(''),
  }
  ctx.vars.maps.set(name, model)
}

function template(d: Directive, text: string): Template {
  try {
    return compileTemplate(text)
  } catch (err) {
    throw new NginxConfError((err as Error).message, d.file, d.line, d.name)
  }
}
