import { readFile } from 'node:fs/promises'
import type { Logger } from '@edgestack/common'
import acme from 'acme-client'
import type { AcmeStats } from './acme-stats.js'
import { installKeyPair, type KeyPairFiles, writeFileAtomic } from './atomic-files.js'
import { fetchRenewalInfo, getJson, orderCertificate } from './order.js'
import { type HeldCertificate, planRenewal, type RenewalInfo, type RenewalPlan, readHeldCertificate } from './renewal.js'
import type { ChallengeResponder } from './responders.js'

export interface RenewerOptions {
  directoryUrl: string
  /** `--ca-file`: the CA that signed the ACME server's HTTPS certificate, beside the system's. */
  ca: Buffer | undefined
  accountKeyFile: string
  email: string | undefined
  /** The certificate's names; the first is its subject. */
  names: readonly string[]
  /** The files the configuration names (stunnel's `cert`/`key`, hitch's `pem-file`). */
  files: KeyPairFiles
  responder: ChallengeResponder
  renewBeforeMs: number | undefined
  /** The terminator's pid file (stunnel.conf's `pid`): it gets SIGHUP once the files are in place. */
  pidFile: string | undefined
  logger: Logger
  stats: AcmeStats
}

/** The longest a running renewer sleeps between checks: the CA's renewal window may move (ARI). */
export const CHECK_INTERVAL_MS = 12 * 60 * 60 * 1000
/** A failed order is tried again after this, doubling each time it fails again, up to the check interval. */
export const FIRST_RETRY_MS = 60_000

export type Outcome = { renewed: true } | { renewed: false; plan: RenewalPlan; ari: RenewalInfo | undefined }

/**
 * Keeps the certificate the configuration names valid: reads it, asks the CA when to renew
 * (ARI) or goes by its dates, orders a new one when due, puts it in place whole and signals
 * the terminator. It writes nothing but those two files and the account key, so it serves
 * real stunnel and hitch as well as ours.
 */
export class Renewer {
  readonly #o: RenewerOptions
  #client: acme.Client | undefined
  /** When this process last put a certificate in place. */
  #issuedAt: Date | undefined

  constructor(opts: RenewerOptions) {
    this.#o = opts
  }

  /** One check, and an order if due; throws when the order fails (the files are then untouched). */
  async check(now = new Date()): Promise<Outcome> {
    const { logger, stats } = this.#o
    const held = await this.#held()
    stats.notAfter = held?.notAfter
    // Every check starts with the directory: a CA that is down fails here, in its own words.
    const directory = (await getJson(this.#o.directoryUrl, this.#o.ca)).body
    let ari: RenewalInfo | undefined
    if (held?.certId) {
      ari = await fetchRenewalInfo(directory, held.certId, this.#o.ca).catch((err: Error) => {
        logger.warn(`renewalInfo (ARI) unavailable, going by the certificate's dates: ${err.message}`)
        return undefined
      })
    }
    let plan = this.#plan(held, ari, now)
    if (plan.at <= now && held && this.#issuedAt && held.notBefore >= this.#issuedAt) {
      // Our own certificate, due already: --renew-before longer than the CA's lifetime. Renewing
      // at every check would be a loop against the CA; half the lifetime is the bound.
      const half = new Date(this.#issuedAt.getTime() + (held.notAfter.getTime() - held.notBefore.getTime()) / 2)
      if (half > now) plan = { at: half, why: `--renew-before is longer than the certificate's lifetime: half of it` }
    }
    if (plan.at > now) return { renewed: false, plan, ari }
    logger.info(`ordering a certificate for ${this.#o.names.join(', ')}: ${plan.why}`)
    const issued = await orderCertificate(await this.#account(), this.#o.names, this.#o.responder, ari ? held?.certId : undefined)
    await installKeyPair(this.#o.files, issued.certPem, issued.keyPem)
    const fresh = readHeldCertificate(issued.certPem)
    // notBefore is whole seconds (and CAs backdate it): the mark is set a little before it.
    this.#issuedAt = new Date(Math.min(now.getTime(), fresh.notBefore.getTime()) - 1000)
    stats.notAfter = fresh.notAfter
    const { cert, key } = this.#o.files
    logger.info(`wrote ${cert === key ? `${cert} (chain and key in one PEM)` : `${cert} and ${key}`}: valid until ${fresh.notAfter.toISOString()}`)
    await this.#signal()
    return { renewed: true }
  }

  #plan(held: HeldCertificate | undefined, ari: RenewalInfo | undefined, now: Date): RenewalPlan {
    if (!held) return { at: now, why: `no usable certificate in ${this.#o.files.cert}` }
    const missing = this.#o.names.filter((n) => !held.names.includes(n))
    if (missing.length > 0) return { at: now, why: `the certificate does not name ${missing.join(', ')}` }
    if (held.notAfter <= now) return { at: now, why: `it expired at ${held.notAfter.toISOString()}` }
    return planRenewal(held, { renewBeforeMs: this.#o.renewBeforeMs, ari })
  }

  async #held(): Promise<HeldCertificate | undefined> {
    try {
      return readHeldCertificate(await readFile(this.#o.files.cert))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#o.logger.warn(`${this.#o.files.cert}: ${(err as Error).message}: ordering a new one`)
      return undefined
    }
  }

  /** The account key is made once (P-256, 0600) and kept: the account is found again by it (RFC 8555 §7.3.1). */
  async #account(): Promise<acme.Client> {
    if (this.#client) return this.#client
    let accountKey: Buffer
    let made = false
    try {
      accountKey = await readFile(this.#o.accountKeyFile)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      accountKey = await acme.crypto.createPrivateEcdsaKey()
      await writeFileAtomic(this.#o.accountKeyFile, accountKey, 0o600)
      this.#o.logger.info(`created the ACME account key ${this.#o.accountKeyFile}`)
      made = true
    }
    const client = new acme.Client({ directoryUrl: this.#o.directoryUrl, accountKey })
    const create = { termsOfServiceAgreed: true, ...(this.#o.email ? { contact: [`mailto:${this.#o.email}`] } : {}) }
    // A key the account was made with is looked up (RFC 8555 §7.3.1, onlyReturnExisting): asked
    // to create it again, acme-client sends an update that only repeats the terms, which a
    // strict CA (pebble) refuses. A key the CA does not know (another CA, an account deleted)
    // makes a new account.
    if (made) await client.createAccount(create)
    else await client.createAccount({ onlyReturnExisting: true }).catch(() => client.createAccount(create))
    this.#client = client
    return client
  }

  /** SIGHUP to the pid in the pid file; our terminator also sees the files change on its own. */
  async #signal(): Promise<void> {
    const { pidFile, logger } = this.#o
    if (!pidFile) {
      logger.info('no pid file: a running tls-terminator picks the new files up itself; stunnel and hitch need a SIGHUP')
      return
    }
    try {
      const pid = Number((await readFile(pidFile, 'utf8')).trim())
      if (!Number.isInteger(pid) || pid <= 1) throw new Error(`no process id in ${pidFile}`)
      process.kill(pid, 'SIGHUP')
      logger.info(`sent SIGHUP to ${pid} (${pidFile})`)
    } catch (err) {
      logger.warn(`the new certificate is in place, but signalling the terminator failed: ${(err as Error).message}`)
    }
  }
}

/**
 * The running form: check, sleep until the plan says (at most CHECK_INTERVAL_MS, or the CA's
 * Retry-After), and after a failure try again with backoff; the certificate on disk keeps
 * serving meanwhile. `stop` ends the loop (a check in flight finishes, nothing follows it).
 */
export function runRenewer(renewer: Renewer, opts: { logger: Logger; stats: AcmeStats; firstRetryMs?: number }): { stop(): void } {
  const { logger, stats } = opts
  const firstRetryMs = opts.firstRetryMs ?? FIRST_RETRY_MS
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const schedule = (ms: number) => {
    stats.nextAttempt = new Date(Date.now() + ms)
    if (!stopped) timer = setTimeout(tick, ms)
  }
  const tick = () => {
    renewer.check().then(
      (outcome) => {
        if (outcome.renewed) {
          stats.succeeded++
          stats.failingInARow = 0
          return schedule(0)
        }
        const untilPlan = outcome.plan.at.getTime() - Date.now()
        const wait = Math.min(untilPlan, outcome.ari?.retryAfterMs ?? CHECK_INTERVAL_MS, CHECK_INTERVAL_MS)
        logger.info(`certificate valid until ${stats.notAfter?.toISOString()}; renewal due ${outcome.plan.at.toISOString()} (${outcome.plan.why})`)
        schedule(Math.max(wait, 1000))
      },
      (err: Error) => {
        stats.failed++
        stats.failingInARow++
        const wait = Math.min(firstRetryMs * 2 ** (stats.failingInARow - 1), CHECK_INTERVAL_MS)
        logger.error(`ACME order failed (${stats.failingInARow} in a row), the current certificate stays; next try in ${Math.round(wait / 1000)} s: ${err.message}`)
        schedule(wait)
      },
    )
  }
  tick()
  return {
    stop() {
      stopped = true
      clearTimeout(timer)
    },
  }
}
