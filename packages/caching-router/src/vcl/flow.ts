import type { VclMethod } from './context.js'

/**
 * varnish's request state machine (the diagrams in varnish's "VCL Steps" docs): for each
 * subroutine and returned action, the next subroutine to run, or a terminal outcome for the
 * router to carry out ('lookup' = cache lookup, 'fetch' = start the backend side, 'deliver'
 * = send the response, 'pipe' = switch to raw bytes, 'done' = nothing more from VCL,
 * 'fail' = 503 via vcl_synth, 'abandon' = give up the fetch).
 */
export const NEXT_STEP: Readonly<Record<VclMethod, Readonly<Record<string, VclMethod | 'lookup' | 'fetch' | 'deliver' | 'pipe' | 'done' | 'fail' | 'abandon'>>>> = {
  recv: { hash: 'hash', pass: 'pass', pipe: 'pipe', purge: 'hash', synth: 'synth', restart: 'recv', fail: 'fail' },
  hash: { lookup: 'lookup', fail: 'fail' },
  hit: { deliver: 'deliver', pass: 'pass', restart: 'recv', synth: 'synth', fail: 'fail' },
  miss: { fetch: 'backend_fetch', pass: 'pass', restart: 'recv', synth: 'synth', fail: 'fail' },
  pass: { fetch: 'backend_fetch', restart: 'recv', synth: 'synth', fail: 'fail' },
  pipe: { pipe: 'pipe', synth: 'synth', fail: 'fail' },
  purge: { restart: 'recv', synth: 'synth', fail: 'fail' },
  deliver: { deliver: 'deliver', restart: 'recv', synth: 'synth', fail: 'fail' },
  synth: { deliver: 'deliver', restart: 'recv', fail: 'fail' },
  backend_fetch: { fetch: 'fetch', abandon: 'abandon', error: 'backend_error', fail: 'fail' },
  backend_response: { deliver: 'deliver', pass: 'deliver', retry: 'backend_fetch', abandon: 'abandon', error: 'backend_error', fail: 'fail' },
  backend_error: { deliver: 'deliver', retry: 'backend_fetch', abandon: 'abandon', fail: 'fail' },
  init: { ok: 'done', fail: 'fail' },
  fini: { ok: 'done' },
}
