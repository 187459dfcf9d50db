import https from 'node:https'
import { readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import {
  createLogger,
  handleSignals,
  OpsServer,
  parseAddress,
  parseCommandLine,
  parseLogFormat,
  StartupError,
  UsageError,
} from '@edgestack/common'
import acme from 'acme-client'
import { AcmeStats } from './acme-stats.js'
import { hitchManagedFiles, stunnelManagedFiles } from './managed-files.js'
import { Renewer, runRenewer } from './renewer.js'
import { type ChallengeResponder, listeningHttpResponder, tlsAlpnResponder, webrootResponder } from './responders.js'

export const ACME_HELP = `Usage: tls-terminator acme [options] --directory URL --domain NAME --agree-tos FILE
       tls-terminator acme [options] --directory URL --domain NAME --agree-tos --config=HITCH.CONF

Obtains and renews, from an ACME CA (RFC 8555), the certificate and key that FILE, a
stunnel.conf (\`cert\`, \`key\`), or HITCH.CONF (its \`pem-file\`: one PEM with the chain and the
key, or a block's \`cert\` and \`private-key\`) names; writes them whole (a temporary file
renamed over each) and sends SIGHUP to the pid in stunnel.conf's \`pid\` or in --pid-file
(hitch takes its pid file only as --pidfile). It writes nothing else the file names, so it
serves stunnel and hitch too.

  --directory URL          the CA's ACME directory (https://acme-v02.api.letsencrypt.org/directory)
  --domain NAME            a name the certificate is for; repeat for more (the first is its subject)
  --agree-tos              agree to the CA's terms of service (required to make an account)
  --service NAME           the section whose cert/key to manage, when FILE has several; with
                           hitch.conf, the pem-file (its path, or its block's cert path)
  --config=FILE            FILE is a hitch.conf (the rule of tls-terminator's own command line)
  --email ADDR             the account's contact
  --account-key FILE       the ACME account key, made on first use (default: acme-account.key
                           beside the key)
  --http-01-root DIR       answer HTTP-01 by writing DIR/.well-known/acme-challenge/TOKEN, for
                           the web server on port 80 (static-server's or nginx's root) to serve
  --http-01-listen ADDR    answer HTTP-01 from a responder of our own on ADDR
  --tls-alpn-01-listen ADDR  answer TLS-ALPN-01 (RFC 8737) from a responder of our own on ADDR
  --ca-file FILE           trust this CA for the ACME server's HTTPS (a test CA such as pebble's)
  --renew-before SEC       renew when fewer than SEC seconds are left (default: a third of the
                           certificate's lifetime; the CA's renewal window (ARI) when it has one)
  --retry SEC              after a failed order, try again in SEC seconds, doubling (default 60)
  --pid-file FILE          signal this pid instead of FILE's \`pid\`
  --once                   check, order if due, and exit: 0 done or not due, 1 failed (for cron)
  --metrics ADDR           serve /metrics, /healthz and /readyz on ADDR while running
  --log-format text|json   the log's line format (default text)
`

/** `tls-terminator acme ...`: argv to a running renewer (or one check with --once). */
export async function runAcmeCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandLine(argv, {
    allowPositionals: true,
    options: {
      directory: { type: 'string' },
      domain: { type: 'string', multiple: true },
      'agree-tos': { type: 'boolean' },
      service: { type: 'string' },
      config: { type: 'string' },
      email: { type: 'string' },
      'account-key': { type: 'string' },
      'http-01-root': { type: 'string' },
      'http-01-listen': { type: 'string' },
      'tls-alpn-01-listen': { type: 'string' },
      'ca-file': { type: 'string' },
      'renew-before': { type: 'string' },
      retry: { type: 'string' },
      'pid-file': { type: 'string' },
      once: { type: 'boolean' },
      metrics: { type: 'string' },
      'log-format': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    process.stdout.write(ACME_HELP)
    return
  }
  const hitchConf = values.config
  if (hitchConf !== undefined && positionals.length > 0) throw new UsageError('acme: give either --config=HITCH.CONF or a stunnel.conf FILE, not both')
  if (hitchConf === undefined && positionals.length !== 1) {
    throw new UsageError('acme: one configuration file expected (the stunnel.conf, or --config=HITCH.CONF, that names the certificate)')
  }
  if (!values.directory) throw new UsageError('acme: --directory URL is required')
  if (!/^https?:\/\//.test(values.directory)) throw new UsageError(`acme: --directory: "${values.directory}" is not an http(s) URL`)
  const names = values.domain ?? []
  if (names.length === 0) throw new UsageError('acme: --domain NAME is required')
  if (!values['agree-tos']) throw new UsageError("acme: --agree-tos is required: making an account agrees to the CA's terms of service")
  const challenges = (['http-01-root', 'http-01-listen', 'tls-alpn-01-listen'] as const).filter((f) => values[f] !== undefined)
  if (challenges.length !== 1) throw new UsageError('acme: give one of --http-01-root, --http-01-listen, --tls-alpn-01-listen')
  const renewBeforeMs = seconds(values['renew-before'], '--renew-before')
  const firstRetryMs = seconds(values.retry, '--retry')
  const managed = hitchConf !== undefined ? await hitchManagedFiles(hitchConf, values.service) : await stunnelManagedFiles(positionals[0] as string, values.service)
  const logger = createLogger({ name: 'tls-terminator acme', format: parseLogFormat(values['log-format']) })

  const caFile = values['ca-file']
  const ca = caFile
    ? await readFile(caFile).catch((err: NodeJS.ErrnoException) => {
        throw new StartupError(`--ca-file ${caFile}: ${err.code ?? err.message}`)
      })
    : undefined
  // Without keep-alive: a --once run exits as soon as it is done, not when idle sockets time out.
  acme.axios.defaults.httpsAgent = new https.Agent({ keepAlive: false, ...(ca ? { ca } : {}) })
  // Our own backoff retries a failed order; acme-client's (5 tries, seconds apart) would hold one.
  ;(acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 1

  const responder = await responderFor(values)
  const stats = new AcmeStats()
  const renewer = new Renewer({
    directoryUrl: values.directory,
    ca,
    accountKeyFile: values['account-key'] ?? join(dirname(resolve(managed.files.key)), 'acme-account.key'),
    email: values.email,
    names,
    files: managed.files,
    responder,
    renewBeforeMs,
    pidFile: values['pid-file'] ?? managed.pidFile,
    logger,
    stats,
  })
  if (values.once) {
    try {
      const outcome = await renewer.check()
      if (!outcome.renewed) logger.info(`not due: valid until ${stats.notAfter?.toISOString()}; renewal due ${outcome.plan.at.toISOString()} (${outcome.plan.why})`)
    } catch (err) {
      throw new StartupError(`ACME order failed, the current certificate stays: ${(err as Error).message}`)
    } finally {
      await responder.close()
    }
    return
  }
  const ops = values.metrics ? new OpsServer({ address: parseAddress(values.metrics, '127.0.0.1'), collect: () => stats.families() }) : undefined
  await ops?.listen()
  const running = runRenewer(renewer, { logger, stats, ...(firstRetryMs !== undefined ? { firstRetryMs } : {}) })
  handleSignals(
    {
      close: async () => {
        running.stop()
        ops?.close()
        await responder.close()
      },
    },
    { logger, ...(ops ? { beforeStop: ops.beforeStop } : {}) },
  )
  ops?.markReady()
}

async function responderFor(values: Record<string, string | boolean | string[] | undefined>): Promise<ChallengeResponder> {
  if (typeof values['http-01-root'] === 'string') return webrootResponder(values['http-01-root'])
  if (typeof values['http-01-listen'] === 'string') return listeningHttpResponder(parseAddress(values['http-01-listen'], '0.0.0.0'))
  return tlsAlpnResponder(parseAddress(values['tls-alpn-01-listen'] as string, '0.0.0.0'))
}

function seconds(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined
  if (!/^\d{1,9}$/.test(text)) throw new UsageError(`acme: ${flag}: "${text}" is not a whole number of seconds`)
  return Number(text) * 1000
}
