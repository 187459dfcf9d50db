import type { Socket } from 'node:net'
import type { Http1Response } from '@edgestack/common'
import type { Policy, ReqObj, RespObj } from './policy.js'
import type { RangeSlicer } from './range.js'
import { type Responder, rangeSlicer } from './respond.js'

/**
 * The head of a response that is not stored (pass, hit-for-miss), through vcl_deliver and
 * varnishd's range filter. False when something else was written instead (vcl_deliver's
 * synth, a 416); a RangeSlicer when only part of the body goes out (206).
 * `acceptRanges`: not a pass (varnishd's cnt_deliver adds it to a 200 unless OC_F_PRIVATE).
 */
export function writeStreamHead(
  d: { policy: Policy; responder: Responder; via: string },
  r: ReqObj,
  res: Http1Response,
  socket: Socket | undefined,
  status: number,
  reason: string,
  headers: string[],
  acceptRanges: boolean,
): boolean | RangeSlicer {
  const out: string[] = []
  // varnishd's Age for a response it did not store is the backend's (t_origin from it).
  let age = '0'
  const forceRanges = acceptRanges && status === 200
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    // Lengths first: most names are none of these, and are never lower-cased.
    if ((name.length === 3 || name.length === 9) && (name.toLowerCase() === 'age' || name.toLowerCase() === 'x-varnish')) {
      if (name.length === 3) age = ageOf(headers[i + 1] as string, age)
      continue
    }
    // The backend's own Accept-Ranges gives way to the one forced below (as withAcceptRanges).
    if (forceRanges && name.length === 13 && name.toLowerCase() === 'accept-ranges') continue
    out.push(name, headers[i + 1] as string)
  }
  out.push('X-Varnish', String(r.xid), 'Age', age, 'Via', d.via)
  if (forceRanges) out.push('Accept-Ranges', 'bytes')
  const resp: RespObj = { status, reason, proto: r.proto, headers: out }
  let next: 'deliver' | 'synth' | 'restart' = 'deliver'
  if (!d.policy.isBuiltin(r, 'deliver')) next = d.policy.deliver(r, resp)
  else r.vsl?.call('deliver', 'deliver')
  if (next !== 'deliver') {
    if (next === 'restart') d.responder.restart(r, res)
    else d.responder.synth(r, res, r.synthStatus ?? 503, r.synthReason)
    return false
  }
  const slicer = rangeSlicer(r, res, resp)
  if (slicer === null) return false
  // The head waits for the body bytes that usually arrived in the same read from the backend:
  // one write (one system call) for both instead of two, until the end of this tick.
  if (socket !== undefined) {
    socket.cork()
    process.nextTick(uncork, socket)
  }
  res.writeHead(resp.status, resp.headers, resp.reason)
  return slicer ?? true
}

const uncork = (socket: Socket) => socket.uncork()

/** A backend's Age as delivered: its digits, or `fallback` when it is not a number (RFC 9111 §5.1). */
function ageOf(value: string, fallback: string): string {
  const v = value.trim()
  if (v.length === 0 || v.length > 10) return fallback
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return fallback
  }
  return String(Number(v))
}
