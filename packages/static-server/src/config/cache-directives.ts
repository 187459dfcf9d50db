import { type Ctx, flag, num, size, time, tpl } from './directive-values.js'
import { NginxConfError } from './errors.js'
import type { LocationConf, ProxyCacheConf } from './model.js'
import type { Directive } from './parse-tree.js'

/** ngx_http_proxy_module's cache defaults (nginx 1.22, ngx_http_proxy_merge_loc_conf). */
export const CACHE_DEFAULTS: ProxyCacheConf = {
  zone: undefined,
  key: undefined,
  valid: [],
  bypass: [],
  noCache: [],
  methods: new Set(['GET', 'HEAD']),
  minUses: 1,
  useStale: new Set(),
  lock: false,
  lockTimeoutMs: 5000,
  lockAgeMs: 5000,
  revalidate: false,
  backgroundUpdate: false,
  convertHead: true,
}

/** ngx_http_upstream_cache_method_mask: the methods a cache may be asked to store. */
const METHODS = new Set(['GET', 'HEAD', 'POST'])
/** ngx_http_proxy_next_upstream_masks, as proxy_cache_use_stale reads them. */
const USE_STALE = new Set(['error', 'timeout', 'invalid_header', 'updating', 'http_500', 'http_502', 'http_503', 'http_504', 'http_403', 'http_404', 'http_429', 'off'])
/** Eight pages of 4 KiB: the smallest keys zone nginx takes (ngx_http_file_cache_set_slot). */
const MIN_KEYS_ZONE = 8 * 4096
/**
 * Kept in memory, a cache without max_size needs a bound all the same (nginx's is the disk):
 * 256 MiB, documented in the README.
 */
const DEFAULT_MAX_BYTES = 256 * 1024 * 1024

/** Which list directives this level has set: a level with any replaces its parent's list. */
export type CacheLists = Set<'valid' | 'bypass' | 'noCache' | 'methods' | 'useStale'>

/**
 * `proxy_cache_path PATH [levels=] keys_zone=NAME:SIZE [inactive=] [max_size=] [use_temp_path=]`
 * in nginx's words when wrong. The cache is kept in memory (common's ObjectStore): levels and
 * use_temp_path only shape nginx's files and are checked, not used; the disk manager's and
 * loader's parameters, and min_free, are refused (README).
 */
export function cacheZone(ctx: Ctx, d: Directive): void {
  const fail = (msg: string) => new NginxConfError(msg, d.file, d.line, d.name)
  const path = d.args[0] as string
  let name: string | undefined
  let inactiveMs = 600_000
  let maxBytes = DEFAULT_MAX_BYTES
  for (const a of d.args.slice(1)) {
    const eq = a.indexOf('=')
    const key = eq < 0 ? a : a.slice(0, eq)
    const v = eq < 0 ? '' : a.slice(eq + 1)
    switch (key) {
      case 'levels':
        // ngx_http_file_cache_set_slot: up to three levels of one or two hex digits each.
        if (!/^[12](:[12]){0,2}$/.test(v)) throw fail(`invalid "levels" "${a}"`)
        continue
      case 'use_temp_path':
        if (v !== 'on' && v !== 'off') throw fail(`invalid use_temp_path value "${v}", it must be "on" or "off"`)
        continue
      case 'keys_zone': {
        const colon = v.indexOf(':')
        const m = colon < 0 ? null : /^(\d+)([kKmMgG]?)$/.exec(v.slice(colon + 1))
        if (colon <= 0 || !m) throw fail(`invalid keys zone size "${a}"`)
        name = v.slice(0, colon)
        // Checked as nginx checks it; the store is bounded by max_size, not by a count of keys.
        if (size(d, v.slice(colon + 1)) < MIN_KEYS_ZONE) throw fail(`keys zone "${a}" is too small`)
        continue
      }
      case 'inactive':
        inactiveMs = parseTime(d, v, () => fail(`invalid inactive value "${a}"`))
        continue
      case 'max_size':
        if (!/^\d+[kKmMgG]?$/.test(v)) throw fail(`invalid max_size value "${a}"`)
        maxBytes = size(d, v)
        continue
      case 'min_free':
      case 'manager_files':
      case 'manager_sleep':
      case 'manager_threshold':
      case 'loader_files':
      case 'loader_sleep':
      case 'loader_threshold':
        throw fail(`"${key}" is not supported by static-server: its proxy_cache is kept in memory, bounded by max_size`)
    }
    throw fail(`invalid parameter "${a}"`)
  }
  if (name === undefined) throw fail(`"${d.name}" must have "keys_zone" parameter`)
  if (ctx.cacheZones.has(name)) throw fail(`duplicate zone "${name}"`)
  for (const z of ctx.cacheZones.values()) {
    // ngx_add_path names both places itself, without the usual " in FILE:LINE".
    if (z.path === path) throw new NginxConfError(`the same path name "${path}" used in ${z.at} and in ${d.file}:${d.line}`, d.file, 0, d.name)
  }
  ctx.cacheZones.set(name, { name, path, at: `${d.file}:${d.line}`, inactiveMs, maxBytes })
}

/** ngx_parse_time's forms (`10m`, `1h30m`, `500ms`, `30`), with the caller's words when wrong. */
function parseTime(d: Directive, v: string, fail: () => NginxConfError): number {
  if (!/^(\d+(ms|s|m|h|d|w|M|y)?)+$/.test(v)) throw fail()
  return time(d, v)
}

/** One proxy_cache* / proxy_no_cache directive into `c`; false when `d` is none of them. */
export function cacheDirective(ctx: Ctx, c: LocationConf, d: Directive, lists: CacheLists, seen: Set<string>): boolean {
  const a = d.args
  const a0 = a[0] as string
  const fail = (msg: string) => new NginxConfError(msg, d.file, d.line, d.name)
  const set = (part: Partial<ProxyCacheConf>) => {
    c.proxyCache = { ...c.proxyCache, ...part }
  }
  const once = () => {
    if (seen.has(d.name)) throw fail(`"${d.name}" directive is duplicate`)
    seen.add(d.name)
  }
  switch (d.name) {
    case 'proxy_cache':
      once()
      if (a0 === 'off') set({ zone: undefined })
      else {
        if (a0.includes('$')) throw fail('"proxy_cache" with variables is not supported by static-server: name one proxy_cache_path zone')
        set({ zone: a0 })
        ctx.cacheUses.push({ zone: a0, d })
      }
      return true
    case 'proxy_cache_key':
      once()
      set({ key: tpl(d, a0) })
      return true
    case 'proxy_cache_valid': {
      // ngx_http_file_cache_valid_set_slot: statuses (or `any`) then a time; a time alone is 200 301 302.
      const last = a[a.length - 1] as string
      const sec = Math.floor(parseTime(d, last, () => fail(`invalid time value "${last}"`)) / 1000)
      const statuses = a.length === 1 ? [200, 301, 302] : a.slice(0, -1).map((s) => {
        if (s === 'any') return 0
        const n = /^\d+$/.test(s) ? Number(s) : Number.NaN
        if (!(n >= 100 && n <= 599)) throw fail(`invalid status "${s}"`)
        return n
      })
      const before = lists.has('valid') ? c.proxyCache.valid : []
      lists.add('valid')
      set({ valid: [...before, ...statuses.map((status) => ({ status, sec }))] })
      return true
    }
    case 'proxy_cache_bypass':
    case 'proxy_no_cache': {
      const key = d.name === 'proxy_cache_bypass' ? 'bypass' : 'noCache'
      const before = lists.has(key) ? c.proxyCache[key] : []
      lists.add(key)
      set({ [key]: [...before, ...a.map((v) => tpl(d, v))] })
      return true
    }
    case 'proxy_cache_methods':
    case 'proxy_cache_use_stale': {
      const methods = d.name === 'proxy_cache_methods'
      const allowed = methods ? METHODS : USE_STALE
      const key = methods ? 'methods' : 'useStale'
      // A bitmask slot: a second line at the same level adds to the first; nginx warns of a repeat.
      const out = new Set<string>(lists.has(key) ? c.proxyCache[key] : [])
      lists.add(key)
      for (const v of a) {
        if (!allowed.has(v)) throw fail(`invalid value "${v}"`)
        if (out.has(v)) ctx.warnings.push(`duplicate value "${v}" in ${d.file}:${d.line}`)
        out.add(v)
      }
      // ngx_http_proxy_merge_loc_conf: GET and HEAD are always cached; `off` clears the rest.
      if (methods) for (const m of ['GET', 'HEAD']) out.add(m)
      if (!methods && out.has('off')) out.clear()
      set({ [key]: out })
      return true
    }
    case 'proxy_cache_min_uses':
      once()
      set({ minUses: num(d, a0) })
      return true
    case 'proxy_cache_lock':
      once()
      set({ lock: flag(d) })
      return true
    case 'proxy_cache_lock_timeout':
      once()
      set({ lockTimeoutMs: time(d, a0) })
      return true
    case 'proxy_cache_lock_age':
      once()
      set({ lockAgeMs: time(d, a0) })
      return true
    case 'proxy_cache_revalidate':
      once()
      set({ revalidate: flag(d) })
      return true
    case 'proxy_cache_background_update':
      once()
      set({ backgroundUpdate: flag(d) })
      return true
    case 'proxy_cache_convert_head':
      once()
      set({ convertHead: flag(d) })
      return true
  }
  return false
}

/**
 * Every zone a proxy_cache names must be declared by a proxy_cache_path (nginx: `"proxy_cache"
 * zone "NAME" is unknown`, at the end of the http block). nginx's zone is shared by its workers; ours would be one per
 * worker process, so proxy_cache with worker_processes above 1 is refused.
 */
export function checkCacheZones(ctx: Ctx, workers: number, http: Directive): void {
  for (const u of ctx.cacheUses) {
    // Found when the http block's configuration is merged: nginx names the block's closing line.
    if (!ctx.cacheZones.has(u.zone)) throw new NginxConfError(`"proxy_cache" zone "${u.zone}" is unknown`, http.file, http.endLine ?? http.line, u.d.name)
    if (workers > 1) {
      throw new NginxConfError('"proxy_cache" with "worker_processes" above 1 is not supported by static-server (each worker would keep its own cache)', u.d.file, u.d.line, u.d.name)
    }
  }
}

