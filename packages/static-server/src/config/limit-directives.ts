import { type Ctx, flag, invalid, size, tpl } from './directive-values.js'
import { NginxConfError } from './errors.js'
import type { LimitConf, LimitZoneModel, LocationConf } from './model.js'
import type { Directive } from './parse-tree.js'

/** ngx_http_limit_req_module's and ngx_http_limit_conn_module's defaults (nginx 1.22). */
export const LIMIT_DEFAULTS: LimitConf = {
  req: [],
  reqStatus: 503,
  reqLogLevel: 'error',
  reqDryRun: false,
  conn: [],
  connStatus: 503,
  connLogLevel: 'error',
  connDryRun: false,
}

/** Eight pages of 4 KiB: the smallest zone nginx takes. */
const MIN_ZONE_BYTES = 8 * 4096
const LOG_LEVELS = new Set(['info', 'notice', 'warn', 'error'])

/**
 * `limit_req_zone KEY zone=NAME:SIZE rate=Nr/s|Nr/m` and `limit_conn_zone KEY zone=NAME:SIZE`,
 * in nginx's words when they are wrong. A zone may be declared after the directives that use
 * it, as in nginx (shared memory is resolved once the whole file is read).
 */
export function limitZone(ctx: Ctx, d: Directive): void {
  const kind = d.name === 'limit_req_zone' ? 'req' : 'conn'
  const key = tpl(d, d.args[0] as string)
  let name: string | undefined
  let bytes = 0
  let rate = 1000
  const fail = (msg: string) => new NginxConfError(msg, d.file, d.line, d.name)
  for (const a of d.args.slice(1)) {
    if (a.startsWith('zone=')) {
      const colon = a.indexOf(':')
      if (colon < 0) throw fail(`invalid zone size "${a}"`)
      name = a.slice(5, colon)
      const m = /^(\d+)([kKmMgG]?)$/.exec(a.slice(colon + 1))
      if (!m) throw fail(`invalid zone size "${a}"`)
      bytes = size(d, a.slice(colon + 1))
      if (bytes < MIN_ZONE_BYTES) throw fail(`zone "${a}" is too small`)
      continue
    }
    if (kind === 'req' && a.startsWith('rate=')) {
      // ngx_http_limit_req_zone: a whole number of requests per second or per minute, kept
      // in thousandths of a request per second.
      const m = /^rate=(\d+)(r\/s|r\/m)?$/.exec(a)
      const n = m ? Number(m[1]) : 0
      if (!m || n <= 0) throw fail(`invalid rate "${a}"`)
      rate = Math.floor((n * 1000) / (m[2] === 'r/m' ? 60 : 1))
      continue
    }
    throw fail(`invalid parameter "${a}"`)
  }
  if (name === undefined) throw fail(`"${d.name}" must have "zone" parameter`)
  const old = ctx.limitZones.get(name)
  if (old) {
    if (old.kind !== kind) throw fail(`the shared memory zone "${name}" is already declared for a different use`)
    if (old.size !== bytes) throw fail(`the size ${bytes} of shared memory zone "${name}" conflicts with already declared size ${old.size}`)
    throw fail(`${d.name} "${name}" is already bound to key "${old.keySource}"`)
  }
  ctx.limitZones.set(name, { kind, name, key, keySource: d.args[0] as string, size: bytes, rate })
}

/** Which list directives this level has set: a level with any replaces its parent's list. */
export type LimitLists = Set<'req' | 'conn'>

/**
 * One limit_req / limit_conn directive (or their _status, _log_level, _dry_run) into `c`;
 * false when `d` is none of them. The zones they name are checked once the file is read
 * (checkLimitZones).
 */
export function limitDirective(ctx: Ctx, c: LocationConf, d: Directive, lists: LimitLists): boolean {
  const a = d.args
  const a0 = a[0] as string
  const set = (part: Partial<LimitConf>) => {
    c.limits = { ...c.limits, ...part }
  }
  const fail = (msg: string) => new NginxConfError(msg, d.file, d.line, d.name)
  switch (d.name) {
    case 'limit_req': {
      let zone: string | undefined
      let burst = 0
      let delay = 0
      for (const x of a) {
        if (x.startsWith('zone=')) zone = x.slice(5)
        else if (x.startsWith('burst=')) {
          burst = /^\d+$/.test(x.slice(6)) ? Number(x.slice(6)) : 0
          if (burst <= 0) throw fail(`invalid burst value "${x}"`)
        } else if (x.startsWith('delay=')) {
          delay = /^\d+$/.test(x.slice(6)) ? Number(x.slice(6)) : 0
          if (delay <= 0) throw fail(`invalid delay value "${x}"`)
        } else if (x === 'nodelay') delay = Number.POSITIVE_INFINITY
        else throw fail(`invalid parameter "${x}"`)
      }
      if (zone === undefined) throw fail('"limit_req" must have "zone" parameter')
      const req = lists.has('req') ? c.limits.req : []
      if (req.some((r) => r.zone === zone)) throw fail('"limit_req" directive is duplicate')
      lists.add('req')
      ctx.limitUses.push({ zone, kind: 'req', d })
      // Thousandths of a request, as the zone's excess is counted.
      set({ req: [...req, { zone, burst: burst * 1000, delay: delay * 1000 }] })
      return true
    }
    case 'limit_conn': {
      const n = /^\d+$/.test(a[1] as string) ? Number(a[1]) : 0
      if (n <= 0) throw fail(`invalid number of connections "${a[1]}"`)
      if (n > 65535) throw fail('connection limit must be less 65536')
      const conn = lists.has('conn') ? c.limits.conn : []
      if (conn.some((r) => r.zone === a0)) throw fail('"limit_conn" directive is duplicate')
      lists.add('conn')
      ctx.limitUses.push({ zone: a0, kind: 'conn', d })
      set({ conn: [...conn, { zone: a0, max: n }] })
      return true
    }
    case 'limit_req_status':
    case 'limit_conn_status': {
      const n = /^\d+$/.test(a0) ? Number(a0) : Number.NaN
      if (Number.isNaN(n)) throw fail(`"${d.name}" directive invalid number`)
      if (n < 400 || n > 599) throw fail('value must be between 400 and 599')
      set(d.name === 'limit_req_status' ? { reqStatus: n } : { connStatus: n })
      return true
    }
    case 'limit_req_log_level':
    case 'limit_conn_log_level':
      if (!LOG_LEVELS.has(a0)) throw invalid(d, a0)
      set(d.name === 'limit_req_log_level' ? { reqLogLevel: a0 } : { connLogLevel: a0 })
      return true
    case 'limit_req_dry_run':
      set({ reqDryRun: flag(d) })
      return true
    case 'limit_conn_dry_run':
      set({ connDryRun: flag(d) })
      return true
  }
  return false
}

/**
 * Every zone a limit_req / limit_conn names must be declared, for the same module: nginx
 * finds out when it maps the shared memory, and says it without a place in the file.
 */
export function checkLimitZones(ctx: Ctx): void {
  for (const u of ctx.limitUses) {
    const z = ctx.limitZones.get(u.zone)
    if (!z) throw new NginxConfError(`zero size shared memory zone "${u.zone}"`, u.d.file, 0)
    if (z.kind !== u.kind) throw new NginxConfError(`the shared memory zone "${u.zone}" is already declared for a different use`, u.d.file, u.d.line, u.d.name)
  }
}

export type { LimitZoneModel }
