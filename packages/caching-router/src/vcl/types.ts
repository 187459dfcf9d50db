import type { VclBackendRef, VclContext, VclIp, VclReturn } from './context.js'

/** VCC's type names; HEADER reads as STRING, BODY is only assigned. */
export type VclType = 'STRING' | 'BOOL' | 'INT' | 'REAL' | 'DURATION' | 'TIME' | 'IP' | 'BACKEND' | 'ACL' | 'HEADER' | 'BODY' | 'PROBE' | 'BLOB' | 'VOID'

/** A compiled expression: a closure over the context and the type the checker proved for it. */
export interface Compiled {
  readonly type: VclType
  readonly fn: (ctx: VclContext) => unknown
  /** Set when the value is known at load time (literals), for regexes, ACLs and constants. */
  readonly constant?: unknown
}

/** A compiled statement or subroutine: undefined means "fell through, carry on". */
export type Exec = (ctx: VclContext) => VclReturn | undefined

export const CLIENT_METHODS = ['recv', 'pipe', 'pass', 'hash', 'purge', 'miss', 'hit', 'deliver', 'synth'] as const
export const BACKEND_METHODS = ['backend_fetch', 'backend_response', 'backend_error'] as const
export const ALL_METHODS = [...CLIENT_METHODS, ...BACKEND_METHODS, 'init', 'fini'] as const

/** The returns varnishd 7.1 accepts in each subroutine ("Legal returns are: ..."). */
export const LEGAL_RETURNS: Readonly<Record<string, readonly string[]>> = {
  recv: ['fail', 'hash', 'pass', 'pipe', 'purge', 'restart', 'synth', 'vcl'],
  pipe: ['fail', 'pipe', 'synth'],
  pass: ['fail', 'fetch', 'restart', 'synth'],
  hash: ['fail', 'lookup'],
  purge: ['fail', 'restart', 'synth'],
  hit: ['deliver', 'fail', 'pass', 'restart', 'synth'],
  miss: ['fail', 'fetch', 'pass', 'restart', 'synth'],
  deliver: ['deliver', 'fail', 'restart', 'synth'],
  synth: ['deliver', 'fail', 'restart'],
  backend_fetch: ['abandon', 'error', 'fail', 'fetch'],
  backend_response: ['abandon', 'deliver', 'error', 'fail', 'pass', 'retry'],
  backend_error: ['abandon', 'deliver', 'fail', 'retry'],
  init: ['fail', 'ok'],
  fini: ['ok'],
}

/** VCL duration units in seconds (a year is 365 days, as in varnish's VNUM_duration). */
export const UNIT_SECONDS: Readonly<Record<string, number>> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 }

const DURATION_TEXT = /^(-?\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)$/

/** `1.5m` -> 90: a duration as std.duration() and ban expressions read it, else undefined. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION_TEXT.exec(text)
  return m ? Number(m[1]) * (UNIT_SECONDS[m[2] as string] as number) : undefined
}

export const RETURN_ACTIONS = new Set(Object.values(LEGAL_RETURNS).flat())

export function toStr(type: VclType, v: unknown): string {
  switch (type) {
    case 'STRING':
    case 'HEADER':
    case 'BODY':
      return (v as string | undefined) ?? ''
    case 'REAL':
    case 'DURATION':
      // varnish prints REAL and DURATION with three decimals ("1.500").
      return (v as number).toFixed(3)
    case 'TIME':
      return new Date((v as number) * 1000).toUTCString()
    case 'BOOL':
      return v ? 'true' : 'false'
    case 'IP':
      return (v as VclIp | undefined)?.address ?? ''
    case 'BACKEND':
      return (v as VclBackendRef | undefined)?.name ?? ''
    default:
      return String(v ?? '')
  }
}

export function toBool(type: VclType, v: unknown): boolean {
  switch (type) {
    case 'BOOL':
      return v as boolean
    case 'STRING':
    case 'HEADER':
      // A header (or any string) is true when it is set, even to the empty string (VRT_Strands2Bool).
      return v !== undefined
    case 'INT':
    case 'REAL':
    case 'DURATION':
    case 'TIME':
      return (v as number) !== 0
    default:
      return v !== undefined
  }
}
