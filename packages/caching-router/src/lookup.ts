import type { Socket } from 'node:net'
import type { Http1Response, Logger } from '@edgestack/common'
import type { BackendFetch } from './backend-fetch.js'
import { type FillDeps, startFill } from './cache-fill.js'
import type { Counters } from './counters.js'
import { type PassDeps, passFetch } from './pass-fetch.js'
import type { ReqObj } from './policy.js'
import { objView } from './respond.js'
import { SLT } from './vsm/vsl-tags.js'

/** Everything after vcl_recv needs: one object for the router's life, shared by every request. */
export interface FetchDeps extends FillDeps, PassDeps {
  counters: Counters
  logger: Logger
  fetches: BackendFetch
}

/** How many times one request re-checks a busy object before fetching on its own. */
const MAX_BUSY_ROUNDS = 50

/**
 * vcl_hash, the lookup and vcl_hit/vcl_miss (cache_req_fsm.c's cnt_lookup), as undici's cache
 * interceptor decides before its handlers: a hit is delivered here, synchronously (a hit costs
 * no promise); grace delivers and starts a background refresh; a miss or hit-for-miss starts a
 * fill (cache-fill.ts); vcl_hit/vcl_miss may pass (pass-fetch.ts), synth or restart.
 * `round` counts the times this request waited on a busy object.
 */
export function lookup(d: FetchDeps, r: ReqObj, res: Http1Response, socket: Socket, log: (h: string) => void, round = 0): void {
  const { store, counters, policy } = d
  const hash = policy.hash(r)
  const now = d.clock()
  const result = store.lookup(
    hash,
    { headers: r.headers, url: r.url, ignoreBusy: r.hashIgnoreBusy || round >= MAX_BUSY_ROUNDS, alwaysMiss: r.hashAlwaysMiss },
    now,
  )
  switch (result.kind) {
    case 'busy':
      counters.busy_sleep++
      result.wait.then(() => {
        counters.busy_wakeup++
        try {
          lookup(d, r, res, socket, log, round + 1)
        } catch (err) {
          d.logger.error(`lookup failed: ${(err as Error).stack}`, { xid: r.xid })
          res.destroy()
        }
      }, noop)
      return
    case 'hit': {
      counters.cache_hit++
      const tx = r.vsl
      if (tx !== undefined) tx.hit(SLT.Hit, result.obj.xid, result.obj.ttlLeft(now), result.obj.grace, result.obj.keep)
      // builtin.vcl's vcl_hit only delivers: no obj view to build for it, no VCL to run.
      let action: ReturnType<typeof policy.hit> = 'deliver'
      if (!policy.isBuiltin(r, 'hit')) action = policy.hit(r, objView(result.obj, now))
      else tx?.call('hit', 'deliver')
      if (action === 'deliver') {
        d.responder.deliver(r, res, result.obj, true)
        log('hit')
        return
      }
      if (action !== 'miss') {
        notFetched(d, action, r, res, socket, log)
        return
      }
      break
    }
    case 'grace':
      counters.cache_hit++
      counters.cache_hit_grace++
      if (r.vsl !== undefined) {
        r.vsl.hit(SLT.Hit, result.obj.xid, result.obj.ttlLeft(now), result.obj.grace, result.obj.keep)
        // A grace hit runs no vcl_hit here: logged as run only when builtin's (which delivers) is the one.
        if (policy.isBuiltin(r, 'hit')) r.vsl.call('hit', 'deliver')
      }
      if (result.refresh) {
        counters.bgfetch++
        startFill(d, { r, res: undefined, socket: undefined, hash, stale: result.obj }, true)
      }
      d.responder.deliver(r, res, result.obj, true)
      log('hit')
      return
    case 'hitmiss':
      // Hit-for-miss: fetch on our own, without waiting for anyone, and store if it changed.
      counters.cache_hitmiss++
      if (r.vsl !== undefined) {
        r.vsl.hit(SLT.HitMiss, result.obj.xid, result.obj.ttlLeft(now))
        if (policy.isBuiltin(r, 'miss')) r.vsl.call('miss', 'fetch')
      }
      log('miss')
      startFill(d, { r, res, socket, hash, stale: undefined }, false)
      return
  }
  counters.cache_miss++
  const stale = result.kind === 'miss' ? result.stale : undefined
  let action: ReturnType<typeof policy.miss> = 'fetch'
  if (!policy.isBuiltin(r, 'miss')) action = policy.miss(r)
  else r.vsl?.call('miss', 'fetch')
  if (action !== 'fetch') {
    notFetched(d, action, r, res, socket, log)
    return
  }
  log('miss')
  startFill(d, { r, res, socket, hash, stale }, true)
}

/** vcl_hit / vcl_miss chose synth, pass or restart. */
function notFetched(d: FetchDeps, action: 'synth' | 'pass' | 'restart', r: ReqObj, res: Http1Response, socket: Socket, log: (h: string) => void): void {
  if (action === 'restart') d.responder.restart(r, res)
  else if (action === 'synth') d.responder.synth(r, res, r.synthStatus ?? 503, r.synthReason)
  else {
    d.counters.s_pass++
    log('pass')
    passFetch(d, r, d.fetches.bereqOf(r, r.method, false, true), undefined, res, socket, noop, noop)
  }
}

const noop = () => {}
