import { acceptsGzip } from '../gzip/accept-encoding.js'
import type { VclContext } from './context.js'

/**
 * `beresp.filters` and `resp.filters` as read when VCL has not set them: the lists varnishd
 * 7.1 builds (cache_vrt_filter.c vbf_default_filter_list / resp_default_filter_list) from the
 * same inputs the router's fetch and delivery decide by. Setting them is refused at load.
 */

/** The fetch processors (VFPs) the body goes through, leftmost first. */
export function berespFilters(ctx: VclContext): string {
  const beresp = ctx.beresp
  if (beresp === undefined) return ''
  // No body: nothing to filter (BS_NONE, or a length of 0).
  const status = beresp.status
  if (ctx.bereq?.method === 'HEAD' || status === 204 || status === 304 || status < 200) return ''
  if (beresp.http.get('content-length')?.trim() === '0') return ''
  const support = ctx.gzipSupport?.() ?? true
  let doGzip = support && beresp.doGzip
  let doGunzip = support && beresp.doGunzip
  const ce = beresp.http.get('content-encoding')
  const isGzip = ce !== undefined && ce.toLowerCase() === 'gzip'
  const isPlain = ce === undefined
  if (doGunzip && !isGzip) doGunzip = false
  if (doGzip && !isPlain) doGzip = false
  const out: string[] = []
  if (doGunzip || (isGzip && beresp.doEsi)) out.push('gunzip')
  if (beresp.doEsi) out.push(doGzip || (isGzip && !doGunzip) ? 'esi_gzip' : 'esi')
  else {
    if (doGzip) out.push('gzip')
    if (isGzip && !doGunzip) out.push('testgunzip')
  }
  return out.join(' ')
}

/** The delivery processors (VDPs): esi, gunzip for a client without gzip, range. */
export function respFilters(ctx: VclContext): string {
  const out: string[] = []
  const obj = ctx.obj
  if (ctx.resp?.doEsi === true && obj?.canEsi === true) out.push('esi')
  if ((ctx.gzipSupport?.() ?? true) && obj?.gzip === true && !acceptsGzip(ctx.req.http.toRaw())) out.push('gunzip')
  // varnishd's vcl_deliver sees the object's status (its range VDP comes later); the router
  // has made a ranged resp.status already, so the object's is read there.
  const status = ctx.method === 'deliver' && ctx.obj !== undefined ? ctx.obj.status : ctx.resp?.status
  if (status === 200 && ctx.req.http.get('range') !== undefined) out.push('range')
  return out.join(' ')
}
