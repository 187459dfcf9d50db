import { setTimeout as sleep } from 'node:timers/promises'
import type { LimitZoneModel } from './config/model.js'
import type { RequestState } from './request-state.js'
import { expand } from './variables.js'

/** nginx's error_log at a level limit_*_log_level names. */
export type LimitLog = (level: string, msg: string) => void

/** One limit_req state: the excess in thousandths of a request, the last time it was counted. */
interface ReqState {
  excess: number
  last: number
  /** Requests holding it between lookup and account (nginx's lr->count). */
  count: number
}

/** About what one state costs nginx in its zone ("one megabyte keeps about 16 thousand 64-byte states"). */
const STATE_BYTES = 64

/**
 * The states of every limit_req_zone and limit_conn_zone of a running server, each bounded by
 * its zone's size. A Map's order is the LRU queue: a state used again is moved to the end.
 */
export class LimitZones {
  readonly #req = new Map<string, Map<string, ReqState>>()
  readonly #conn = new Map<string, Map<string, number>>()
  readonly #zones: ReadonlyMap<string, LimitZoneModel>

  constructor(zones: ReadonlyMap<string, LimitZoneModel>) {
    this.#zones = zones
    for (const z of zones.values()) {
      if (z.kind === 'req') this.#req.set(z.name, new Map())
      else this.#conn.set(z.name, new Map())
    }
  }

  zone(name: string): LimitZoneModel {
    return this.#zones.get(name) as LimitZoneModel
  }

  reqStates(name: string): Map<string, ReqState> {
    return this.#req.get(name) as Map<string, ReqState>
  }

  connStates(name: string): Map<string, number> {
    return this.#conn.get(name) as Map<string, number>
  }
}

function capacity(zone: LimitZoneModel): number {
  return Math.max(1, Math.floor(zone.size / STATE_BYTES))
}

/** How far a state's excess drains between two of its requests (ngx_http_limit_req_lookup's clock). */
function elapsed(now: number, last: number): number {
  const ms = now - last
  return ms < -60_000 ? 1 : ms < 0 ? 0 : ms
}

function drained(s: ReqState, rate: number, now: number): number {
  const excess = s.excess - Math.trunc((rate * elapsed(now, s.last)) / 1000) + 1000
  return excess < 0 ? 0 : excess
}

/**
 * ngx_http_limit_req_expire: drops up to two old states nobody holds (idle a minute and
 * drained); with `force`, the least recently used one first whatever its age.
 */
function expire(states: Map<string, ReqState>, rate: number, now: number, force: boolean): void {
  for (let n = force ? 0 : 1; n < 3; n++) {
    const first = states.entries().next()
    if (first.done) return
    const [key, s] = first.value
    if (s.count > 0) return
    if (n !== 0) {
      const ms = Math.abs(now - s.last)
      if (ms < 60_000 || s.excess - Math.trunc((rate * ms) / 1000) > 0) return
    }
    states.delete(key)
  }
}

type Held = { zone: string; state: ReqState; rate: number; delay: number }

/**
 * The limit_req part of nginx's preaccess phase (ngx_http_limit_req_handler): every limit of
 * the location in order, the last one accounted at once, the earlier ones when the request
 * goes on. A number is the status to answer with; a promise is a delay to wait out first.
 */
export function limitReqPhase(st: RequestState, zones: LimitZones, log: LimitLog): number | Promise<void> | undefined {
  const conf = st.conf.limits
  if (conf.req.length === 0 || st.limitReqSet) return undefined
  const now = Date.now()
  const held: Held[] = []
  let rc: 'declined' | 'again' | 'ok' | 'busy' | 'error' = 'declined'
  let excess = 0
  let limit = conf.req[0] as (typeof conf.req)[number]
  for (let n = 0; n < conf.req.length; n++) {
    limit = conf.req[n] as (typeof conf.req)[number]
    const zone = zones.zone(limit.zone)
    const key = zoneKey(st, zone, 65535, log)
    if (key === undefined) continue
    const states = zones.reqStates(zone.name)
    const account = n === conf.req.length - 1
    let s = states.get(key)
    if (s) {
      states.delete(key)
      states.set(key, s)
      excess = drained(s, zone.rate, now)
      if (excess > limit.burst) {
        rc = 'busy'
        break
      }
      if (account) {
        if (elapsed(now, s.last)) s.last = now
        s.excess = excess
        rc = 'ok'
        break
      }
      s.count++
      held.push({ zone: zone.name, state: s, rate: zone.rate, delay: limit.delay })
      rc = 'again'
      continue
    }
    excess = 0
    expire(states, zone.rate, now, false)
    if (states.size >= capacity(zone)) expire(states, zone.rate, now, true)
    if (states.size >= capacity(zone)) {
      log('alert', `could not allocate node in limit_req zone "${zone.name}"`)
      rc = 'error'
      break
    }
    s = account ? { excess: 0, last: now, count: 0 } : { excess: 0, last: 0, count: 1 }
    states.set(key, s)
    rc = account ? 'ok' : 'again'
    if (!account) held.push({ zone: zone.name, state: s, rate: zone.rate, delay: limit.delay })
  }
  if (rc === 'declined') return undefined
  st.limitReqSet = true
  const dry = conf.reqDryRun
  if (rc === 'busy' || rc === 'error') {
    if (rc === 'busy') log(conf.reqLogLevel, `limiting requests${dry ? ', dry run' : ''}, excess: ${thousandths(excess)} by zone "${limit.zone}"${context(st)}`)
    for (const h of held) h.state.count--
    st.limitReqStatus = dry ? 'REJECTED_DRY_RUN' : 'REJECTED'
    return dry ? undefined : conf.reqStatus
  }
  if (rc === 'again') excess = 0
  // ngx_http_limit_req_account: the earlier limits are counted now; the longest wait wins.
  let maxDelay = excess <= limit.delay ? 0 : Math.trunc(((excess - limit.delay) * 1000) / zones.zone(limit.zone).rate)
  let by = limit.zone
  for (let i = held.length - 1; i >= 0; i--) {
    const h = held[i] as Held
    const s = h.state
    const e = drained(s, h.rate, now)
    if (elapsed(now, s.last)) s.last = now
    s.excess = e
    s.count--
    if (e <= h.delay) continue
    const delay = Math.trunc(((e - h.delay) * 1000) / h.rate)
    if (delay > maxDelay) {
      maxDelay = delay
      excess = e
      by = h.zone
    }
  }
  if (maxDelay === 0) {
    st.limitReqStatus = 'PASSED'
    return undefined
  }
  log(delayLevel(conf.reqLogLevel), `delaying request${dry ? ', dry run' : ''}, excess: ${thousandths(excess)}, by zone "${by}"${context(st)}`)
  st.limitReqStatus = dry ? 'DELAYED_DRY_RUN' : 'DELAYED'
  return dry ? undefined : sleep(maxDelay)
}

/**
 * The limit_conn part of the preaccess phase (ngx_http_limit_conn_handler): one count per
 * request in each zone, given back when the request ends. A number is the status to answer.
 */
export function limitConnPhase(st: RequestState, zones: LimitZones, log: LimitLog): number | undefined {
  const conf = st.conf.limits
  if (conf.conn.length === 0 || st.limitConnStatus !== '') return undefined
  const taken: { states: Map<string, number>; key: string }[] = []
  const giveBack = () => {
    for (const t of taken.splice(0)) {
      const n = (t.states.get(t.key) ?? 1) - 1
      if (n <= 0) t.states.delete(t.key)
      else t.states.set(t.key, n)
    }
  }
  for (const limit of conf.conn) {
    const zone = zones.zone(limit.zone)
    const key = zoneKey(st, zone, 255, log)
    if (key === undefined) continue
    st.limitConnStatus = 'PASSED'
    const states = zones.connStates(zone.name)
    const n = states.get(key)
    const full = n === undefined && states.size >= capacity(zone)
    if (full || (n !== undefined && n >= limit.max)) {
      if (!full) log(conf.connLogLevel, `limiting connections${conf.connDryRun ? ', dry run,' : ''} by zone "${zone.name}"${context(st)}`)
      giveBack()
      st.limitConnStatus = conf.connDryRun ? 'REJECTED_DRY_RUN' : 'REJECTED'
      return conf.connDryRun ? undefined : conf.connStatus
    }
    states.set(key, (n ?? 0) + 1)
    taken.push({ states, key })
  }
  // The request's pool cleanup in nginx: whether the answer completes or the client leaves.
  if (taken.length > 0) {
    let done = false
    const release = () => {
      if (done) return
      done = true
      giveBack()
    }
    st.res.once('finish', release)
    st.res.once('close', release)
  }
  return undefined
}

/** The zone's key for this request; undefined (not limited) when empty or longer than `max`, as nginx. */
function zoneKey(st: RequestState, zone: LimitZoneModel, max: number, log: LimitLog): string | undefined {
  const key = expand(zone.key, st)
  if (key.length === 0) return undefined
  if (key.length > max) {
    log('error', `the value of the "${zone.keySource}" key is more than ${max} bytes: "${key}"`)
    return undefined
  }
  return key
}

/** ngx_http_limit_req_merge_conf: delays are logged one level below refusals (info stays info). */
function delayLevel(level: string): string {
  return level === 'info' ? 'info' : level === 'notice' ? 'info' : level === 'warn' ? 'notice' : 'warn'
}

function thousandths(n: number): string {
  return `${Math.floor(n / 1000)}.${String(n % 1000).padStart(3, '0')}`
}

function context(st: RequestState): string {
  const r = st.req
  return `, client: ${st.remoteAddr}, server: ${st.server.primaryName}, request: "${r.method} ${r.target} HTTP/${r.version}", host: "${st.host}"`
}
