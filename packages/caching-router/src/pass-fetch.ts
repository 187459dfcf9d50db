import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import { Http1ParseError, type Http1Response } from '@edgestack/common'
import { type BackendFetch, withDate } from './backend-fetch.js'
import type { Params } from './params.js'
import type { BereqObj, Policy, ReqObj } from './policy.js'
import type { RangeSlicer } from './range.js'
import { berespOf, type Responder } from './respond.js'
import { PassEsiBody } from './esi/pass-esi.js'
import { writeStreamHead } from './stream-head.js'

export interface PassDeps {
  policy: Policy
  params: Params
  /** The storage size: a do_esi pass body larger than it fails (503). */
  storageBytes(): number
  responder: Responder
  via: string
  fetches: BackendFetch
}

/**
 * A pass (vcl_recv's, vcl_hit's or vcl_miss's): the backend's response streams to the client
 * with backpressure through vcl_backend_response and vcl_deliver, and is not stored.
 * `done` gets the status and fields once the body is through (RFC 9111 §4.4 invalidation).
 */
export function passFetch(
  d: PassDeps,
  r: ReqObj,
  bereq: BereqObj,
  body: Readable | undefined,
  res: Http1Response,
  socket: Socket,
  clientFailed: (err: Error) => void,
  done: (status: number, headers: string[]) => void,
): void {
  const { policy, responder, fetches } = d
  if (policy.backendFetch(bereq) === 'abandon') {
    fetches.abandoned(bereq)
    responder.synth(r, res, 503, 'Service Unavailable')
    return
  }
  let status = 0
  let headers: string[] = []
  // vcl_deliver answered with synth instead (or the Range was a 416): the body is not wanted.
  let replaced = false
  let slicer: RangeSlicer | undefined
  // `beresp.do_esi` on a pass: collected, parsed, then assembled as a page (esi/pass-esi.ts).
  let esi: PassEsiBody | undefined
  const control = fetches.start(bereq, body, {
    head: (s, reason, h) => {
      const beresp = berespOf(s, reason, withDate(h))
      const action = policy.backendResponse(bereq, beresp)
      if (action !== 'deliver') {
        replaced = true
        control?.abort()
        // A retry fetches again; a request body already sent cannot be sent twice (varnishd
        // fails that retry too), and past max_retries the fetch fails: vcl_backend_error.
        const retries = bereq.retries ?? 0
        if (action === 'retry' && body === undefined && retries < d.params.get('max_retries')) {
          bereq.retries = retries + 1
          passFetch(d, r, bereq, body, res, socket, clientFailed, done)
        } else if (action === 'retry') responder.backendError(r, res, bereq)
        else responder.synth(r, res, 503, 'Backend fetch failed')
        return
      }
      status = beresp.status
      headers = beresp.headers
      if (beresp.doEsi && beresp.status !== 304 && beresp.status !== 204) {
        esi = new PassEsiBody(bereq, beresp, d.params.gzip, d.storageBytes(), fetches, (obj) => {
          if (obj === undefined) {
            control?.abort()
            if (res.headersSent) res.destroy()
            else responder.synth(r, res, 503, 'Backend fetch failed')
            return
          }
          responder.deliver(r, res, obj, false)
          done(status, headers)
        })
        return
      }
      const written = writeStreamHead(d, r, res, socket, beresp.status, beresp.reason, beresp.headers, false)
      if (written === false) {
        replaced = true
        control?.abort()
      } else if (written !== true) slicer = written
    },
    interim: (s, reason, h) => {
      res.writeInterim(s, h, reason)
    },
    data: (c) => {
      if (replaced) return true
      if (esi !== undefined) {
        if (esi.data(c)) return true
        esi.onDrain(() => control?.resume())
        return false
      }
      if (slicer !== undefined) {
        const part = slicer.partOf(c, res)
        if (part === undefined) return true
        c = part
      }
      if (res.write(c)) return true
      // The client's socket is full: the backend waits until it drained.
      socket.once('drain', () => control?.resume())
      return false
    },
    end: () => {
      if (replaced) return
      if (esi !== undefined) {
        esi.end()
        return
      }
      res.end()
      done(status, headers)
    },
    error: (err) => {
      // The client's body broke (a bad chunk size, cut short): the connection has answered
      // 400 (or gone) already, and the backend did nothing wrong.
      const clientErr = body?.errored
      if (clientErr instanceof Error || err instanceof Http1ParseError) {
        clientFailed(clientErr instanceof Error ? clientErr : err)
        return
      }
      fetches.failed(err, r.xid, bereq.backend)
      if (esi !== undefined) {
        esi.error()
        return
      }
      if (res.headersSent) res.destroy()
      else responder.backendError(r, res, bereq)
    },
  })
  if (!control) {
    responder.backendError(r, res, bereq)
    return
  }
  // An abort if the client leaves (backpressure: `data` waits for 'drain' when a write is refused).
  res.once('close', control.abort)
}
