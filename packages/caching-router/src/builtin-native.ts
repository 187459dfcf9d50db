import type { BereqObj, BerespObj } from './policy.js'
import { fieldOf } from './policy.js'

const NO_STORE = /no-store/i
const NO_CACHE_STORE_PRIVATE = /no-cache|no-store|private/i

/**
 * builtin.vcl's vcl_backend_response (vcl/builtin.ts) as the router runs it when the user's VCL
 * defines no vcl_backend_response: the same decisions on the same values, without building
 * beresp for VCL. A pass's response gets no lifetime (startBackendResponse); anything else that
 * builtin.vcl finds uncacheable becomes a hit-for-miss marker for 120 s.
 * vcl-policy.test.ts compares it with the compiled builtin.vcl.
 */
export function builtinBackendResponse(bereqUncacheable: boolean, beresp: BerespObj): void {
  if (bereqUncacheable) {
    beresp.ttl = 0
    beresp.grace = 0
    beresp.keep = 0
    beresp.uncacheable = true
    return
  }
  const h = beresp.headers
  const surrogate = fieldOf(h, 'surrogate-control')
  const cc = fieldOf(h, 'cache-control')
  if (
    beresp.ttl <= 0 ||
    fieldOf(h, 'set-cookie') !== undefined ||
    (surrogate !== undefined && NO_STORE.test(surrogate)) ||
    (surrogate === undefined && beresp.targeted !== true && cc !== undefined && NO_CACHE_STORE_PRIVATE.test(cc)) ||
    fieldOf(h, 'vary') === '*'
  ) {
    beresp.ttl = 120
    beresp.uncacheable = true
  }
}

/** builtin.vcl's vcl_backend_fetch, without building VCL's bereq for it: a GET sends no body. */
export function builtinBackendFetch(bereq: BereqObj): void {
  if (bereq.method === 'GET') bereq.bodyUnset = true
}
