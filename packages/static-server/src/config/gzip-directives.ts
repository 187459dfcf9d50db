import { type Ctx, flag, invalid, size } from './directive-values.js'
import { NginxConfError } from './errors.js'
import type { GzipConf, LocationConf } from './model.js'
import type { Directive } from './parse-tree.js'
import { compileRegex } from './variable-names.js'

/** The gzip filter's defaults and ngx_http_core_module's gzip_* ones (nginx 1.22). */
export const GZIP_DEFAULTS: GzipConf = {
  on: false,
  types: new Set(['text/html']),
  level: 1,
  minLength: 20,
  // gzip_window 32k and gzip_hash 64k: zlib's own maximum window and default memLevel.
  windowBits: 15,
  memLevel: 8,
  vary: false,
  httpVersion: '1.1',
  proxied: new Set(['off']),
  disableMsie6: false,
  disable: [],
}

const PROXIED = new Set(['off', 'expired', 'no-cache', 'no-store', 'private', 'no_last_modified', 'no_etag', 'auth', 'any'])

/** Which list-like gzip_* directives this level has set: their lines add up within a level. */
export type GzipLists = Set<'types' | 'proxied' | 'disable'>

/**
 * Reads one gzip directive into `c` (the filter module's and the core module's gzip_* ones);
 * false when `d` is not one of them. Values are checked in nginx's words.
 */
export function gzipDirective(ctx: Ctx, c: LocationConf, d: Directive, lists: GzipLists): boolean {
  const a = d.args
  const a0 = a[0] as string
  const set = (part: Partial<GzipConf>) => {
    c.gzip = { ...c.gzip, ...part }
  }
  switch (d.name) {
    case 'gzip':
      set({ on: flag(d) })
      return true
    case 'gzip_static':
      if (a0 !== 'on' && a0 !== 'off' && a0 !== 'always') throw invalid(d, a0)
      c.gzipStatic = a0 === 'off' ? false : a0
      return true
    case 'gzip_types':
      set({ types: gzipTypes(lists.has('types') ? c.gzip.types : undefined, a) })
      lists.add('types')
      return true
    case 'gzip_comp_level': {
      const n = /^\d+$/.test(a0) ? Number(a0) : Number.NaN
      if (Number.isNaN(n)) throw new NginxConfError(`"${d.name}" directive invalid number`, d.file, d.line, d.name)
      if (n < 1 || n > 9) throw new NginxConfError('value must be between 1 and 9', d.file, d.line, d.name)
      set({ level: n })
      return true
    }
    case 'gzip_min_length':
      set({ minLength: size(d, a0) })
      return true
    case 'gzip_window':
      set({ windowBits: powerOfTwo(d, size(d, a0), 9, 15, '512, 1k, 2k, 4k, 8k, 16k, or 32k') })
      return true
    case 'gzip_hash':
      // ngx_http_gzip_hash: memLevel = log2(size) - 8.
      set({ memLevel: powerOfTwo(d, size(d, a0), 9, 17, '512, 1k, 2k, 4k, 8k, 16k, 32k, 64k, or 128k') - 8 })
      return true
    case 'gzip_buffers':
      // The sizes of the filter's output buffers: where chunks break, never what they hold.
      if (!/^\d+$/.test(a0) || Number(a0) === 0 || size(d, a[1] as string) === 0) {
        throw new NginxConfError(`"${d.name}" directive invalid value`, d.file, d.line, d.name)
      }
      return true
    case 'gzip_vary':
      set({ vary: flag(d) })
      return true
    case 'gzip_http_version':
      if (a0 !== '1.0' && a0 !== '1.1') throw invalid(d, a0)
      set({ httpVersion: a0 })
      return true
    case 'gzip_proxied': {
      // ngx_conf_set_bitmask_slot: the flags of every line of one level add up.
      const p = new Set<string>(lists.has('proxied') ? c.gzip.proxied : [])
      for (const v of a) {
        if (!PROXIED.has(v)) throw invalid(d, v)
        p.add(v)
      }
      lists.add('proxied')
      set({ proxied: p })
      return true
    }
    case 'gzip_disable': {
      // ngx_http_gzip_disable: `msie6` is a flag inherited on its own; the regexes (caseless)
      // are a list that a level's first line starts afresh. Without the degradation module
      // (Debian's nginx has none), `degradation` is one more regex, as here.
      const disable = lists.has('disable') ? [...c.gzip.disable] : []
      for (const v of a) {
        if (v === 'msie6') set({ disableMsie6: true })
        else disable.push(compileRegex(ctx, d, v, 'i'))
      }
      lists.add('disable')
      set({ disable })
      return true
    }
  }
  return false
}

/**
 * ngx_http_types_slot: lower-cased types added to this level's list (text/html is always in
 * it), `*` for any type.
 */
export function gzipTypes(level: GzipConf['types'] | undefined, args: readonly string[]): GzipConf['types'] {
  if (level === '*') return '*'
  const types = new Set(level ?? ['text/html'])
  for (const t of args) {
    if (t === '*') return '*'
    types.add(t.toLowerCase())
  }
  return types
}

/** log2 of a size that must be a power of two between 2^min and 2^max. */
function powerOfTwo(d: Directive, n: number, min: number, max: number, words: string): number {
  const bits = Math.log2(n)
  if (!Number.isInteger(bits) || bits < min || bits > max) throw new NginxConfError(`"${d.name}" directive must be ${words}`, d.file, d.line, d.name)
  return bits
}
