import type { VclResolvedBackend } from './vcl/index.js'

/**
 * The per-backend counters varnishstat shows as `VBE.VCL.NAME.*` (VSC_vbe.vsc), for the ones
 * the router keeps: requests sent and connections failed. Kept beside the VCL backend object
 * (never looked up by name on a request path); read by the shared-memory writer.
 */
export interface VbeCounters {
  req: number
  fail: number
}

const byBackend = new WeakMap<VclResolvedBackend, VbeCounters>()

export function vbeCounters(b: VclResolvedBackend): VbeCounters {
  let c = byBackend.get(b)
  if (c === undefined) {
    c = { req: 0, fail: 0 }
    byBackend.set(b, c)
  }
  return c
}
