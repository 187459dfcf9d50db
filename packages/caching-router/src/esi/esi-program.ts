/**
 * What the ESI parser leaves with a stored object (varnish's OA_ESIDATA, the VEC byte codes
 * of cache_esi.h): the body cut into the bytes sent as they are and the includes between
 * them. Skipped bytes (ESI tags, `<esi:remove>` content) are simply not referenced.
 */

/** `body[start, end)` goes to the client as it is (VEC_V*). */
export interface EsiVerbatim {
  readonly start: number
  readonly end: number
}

/** `<esi:include>` (VEC_INCL): a sub-request for `src`, with `host` as its Host when given. */
export interface EsiInclude {
  /** The path (relative `src` already resolved against the object's URL, entities decoded). */
  readonly src: string
  /** From an absolute `src` (`http://host/...`): the sub-request's Host; undefined: the parent's. */
  readonly host: string | undefined
  /** `onerror="continue"` (VEC_IC): a failed fragment is left out instead of ending the page. */
  readonly onErrorContinue: boolean
}

export type EsiPart = EsiVerbatim | EsiInclude

/** The parsed page: parts in body order. */
export interface EsiProgram {
  readonly parts: readonly EsiPart[]
  /** How many includes (sub-requests) one delivery makes at most. */
  readonly includes: number
}

export function isInclude(part: EsiPart): part is EsiInclude {
  return (part as EsiInclude).src !== undefined
}

/** The `-p feature=` flags that change how ESI is parsed (varnishd's FEATURE_ESI_*). */
export interface EsiFeatures {
  readonly ignoreHttps: boolean
  readonly disableXmlCheck: boolean
  readonly ignoreOtherElements: boolean
  readonly removeBom: boolean
}
