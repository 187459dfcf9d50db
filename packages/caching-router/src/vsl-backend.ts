import type { FetchControl, FetchSink } from './backend.js'
import type { BereqObj, ReqObj } from './policy.js'
import { headBytes, realNow, Tx } from './vsl-records.js'
import { SLT } from './vsm/vsl-tags.js'
import type { VslLog } from './vsm/vsl.js'

/**
 * A backend request's transaction (cache_fetch.c): `Begin bereq PARENT REASON` (fetch, bgfetch,
 * pass, pipe), its Start timestamp, and the parent request's `Link bereq VXID REASON`.
 */
export function bereqTx(log: VslLog, r: ReqObj, xid: number, reason: string): Tx {
  r.vsl?.link('bereq', xid, reason)
  const t0 = realNow()
  const tx = new Tx(log, xid, true, 'bereq', r.xid, reason, t0)
  tx.timestamp('Start', t0)
  return tx
}

/**
 * The fetch as it goes out and comes back (cache_fetch.c vbf_stp_startfetch, vbf_fetch_body):
 * the bereq as sent (after vcl_backend_fetch), the Bereq, Beresp and BerespBody timestamps,
 * the beresp as received, FetchError on a failure, then BereqAcct
 * (`bereqHead bereqBody total berespHead berespBody total`) and End. Returns the sink to fetch
 * with; `ended` ends the transaction when the fetch is given up without a sink call (an abort).
 */
export function loggedFetch(tx: Tx, bereq: BereqObj, sink: FetchSink): { sink: FetchSink; ended(control: FetchControl): FetchControl } {
  tx.rec(SLT.BereqMethod, bereq.method)
  tx.rec(SLT.BereqURL, bereq.url)
  tx.rec(SLT.BereqProtocol, bereq.proto)
  const h = bereq.headers
  for (let i = 0; i < h.length; i += 2) tx.header(SLT.BereqHeader, h[i] as string, h[i + 1] as string)
  tx.timestamp('Bereq')
  const reqHead = headBytes(bereq.method, bereq.url, bereq.proto.slice(5), bereq.headers)
  let respHead = 0
  let respBody = 0
  const end = () => {
    if (tx.ended) return
    tx.numbers(SLT.BereqAcct, [reqHead, 0, reqHead, respHead, respBody, respHead + respBody])
    tx.end()
  }
  return {
    sink: {
      head(status, reason, headers) {
        tx.timestamp('Beresp')
        tx.rec(SLT.BerespProtocol, 'HTTP/1.1')
        tx.rec(SLT.BerespStatus, String(status))
        tx.rec(SLT.BerespReason, reason)
        for (let i = 0; i < headers.length; i += 2) tx.header(SLT.BerespHeader, headers[i] as string, headers[i + 1] as string)
        // "HTTP/1.1 200 OK\r\n", the fields, the empty line: the head as the backend framed it.
        respHead = headBytes('', '', '', headers) + reason.length + 6
        sink.head(status, reason, headers)
      },
      interim: (status, reason, headers) => sink.interim(status, reason, headers),
      data(chunk) {
        respBody += chunk.length
        return sink.data(chunk)
      },
      end() {
        tx.timestamp('BerespBody')
        tx.rec(SLT.Length, String(respBody))
        end()
        sink.end()
      },
      error(err) {
        tx.rec(SLT.FetchError, fetchError(err))
        tx.timestamp('Error')
        end()
        sink.error(err)
      },
    },
    ended: (control) => ({
      resume: control.resume,
      abort() {
        control.abort()
        end()
      },
    }),
  }
}

/** A backend request that never went out (no backend healthy, vcl_backend_fetch abandoned). */
export function bereqFailed(tx: Tx, why: string): void {
  if (tx.ended) return
  tx.rec(SLT.FetchError, why)
  tx.timestamp('Error', realNow())
  tx.rec(SLT.BereqAcct, '0 0 0 0 0 0')
  tx.end()
}

/** varnishd's FetchError words for the failures it names (cache_fetch.c, cache_backend.c). */
function fetchError(err: Error): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
      return 'first byte timeout'
    case 'UND_ERR_BODY_TIMEOUT':
      return 'between bytes timeout'
    case 'ECONNREFUSED':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'backend connection failed'
    default:
      return err.message
  }
}
