import { NginxConfError } from './errors.js'
import { BUILTIN } from './variable-names.js'

/** Families nginx resolves by prefix (ngx_http_variables_init_vars), not by name. */
const PREFIXES = ['http_', 'sent_http_', 'sent_trailer_', 'cookie_', 'arg_', 'upstream_http_', 'upstream_trailer_', 'upstream_cookie_']
/** Changeable built-ins (absent from BUILTIN, which lists the others) and our $connection_upgrade. */
const ALSO_KNOWN = new Set(['args', 'limit_rate', 'connection_upgrade'])

/**
 * nginx refuses a configuration that reads a variable nobody defines: `unknown "x" variable`,
 * without a line (it is found once the whole file is read). Every template in the model is a
 * frozen list of strings and `{ v: name }` parts; those are walked here.
 */
export function checkVariables(model: object, extra: Iterable<object>, defined: ReadonlySet<string>, file: string): void {
  const seen = new Set<object>()
  const visit = (o: unknown): void => {
    if (o === null || typeof o !== 'object' || o instanceof RegExp || seen.has(o)) return
    seen.add(o)
    if (o instanceof Map) {
      for (const v of o.values()) visit(v)
      return
    }
    if (o instanceof Set) return
    const v = (o as { v?: unknown }).v
    if (typeof v === 'string' && Object.keys(o).length === 1) {
      if (!known(v, defined)) throw new NginxConfError(`unknown "${v}" variable`, file, 0)
      return
    }
    for (const x of Object.values(o)) visit(x)
  }
  visit(model)
  for (const x of extra) visit(x)
}

function known(name: string, defined: ReadonlySet<string>): boolean {
  if (/^\d$/.test(name) || defined.has(name) || BUILTIN.has(name) || ALSO_KNOWN.has(name)) return true
  return PREFIXES.some((p) => name.startsWith(p) && name.length > p.length)
}
