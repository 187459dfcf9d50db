#!/usr/bin/env node
import type { ChildProcess } from 'node:child_process'
import cluster from 'node:cluster'
import { open } from 'node:fs/promises'
import {
  answerMetricRequests,
  collectFromChildren,
  connectionBudget,
  createLogger,
  handleSignals,
  type Logger,
  type LogLevel,
  obeyManager,
  OpsServer,
  PidFile,
  openFileLimit,
  parseAddress,
  parseCommandLine,
  parseDrainDelay,
  parseLogFormat,
  reopenLogFiles,
  reportReady,
  runMain,
  runManager,
  type Service,
  StartupError,
  UsageError,
} from '@edgestack/common'
import type { BuiltModel } from './config/build-model.js'
import { modelFromFlags } from './config/flags.js'
import { hitchOnlyOption, isHitchCommandLine, parseHitchCommandLine } from './config/hitch-command-line.js'
import { type HitchBuilt, loadHitch } from './config/hitch-model.js'
import { DEFAULT_MAX_CONNECTIONS, type TerminatorModel } from './config/model.js'
import { loadStunnelConf } from './config/stunnel-conf.js'
import { ensureDevCertificates } from './dev-cert.js'
import { prepare, randomTicketKeys } from './prepare.js'
import { createTlsTerminator } from './server.js'
import { ReloadStats, TerminatorStats } from './stats.js'
import { CertificateWatch, certificateFiles } from './certificate-watch.js'

const HELP = `Usage: tls-terminator [options] FILE
       tls-terminator [options] -fd N
       tls-terminator [options] --accept ADDR --connect ADDR --cert FILE --key FILE
       tls-terminator [options] --config=HITCH.CONF [hitch options] [PEM...]
       tls-terminator [options] --frontend=[HOST]:PORT --backend=[HOST]:PORT [hitch options] PEM...
       tls-terminator cert --out DIR
       tls-terminator acme [options] --directory URL --domain NAME --agree-tos FILE

Terminates TLS (stunnel's and hitch's job) and forwards plain TCP to a backend. FILE is a
stunnel.conf, read as stunnel reads it; the flags are the one-service case of the same
configuration. With --config, --frontend or --backend the command line is hitch's instead:
a hitch.conf and hitch's options (--alpn-protos, --write-proxy-v2, --tls-protos, --ciphers,
-u/--user, ... as in hitch(8)), applied over the file, as hitch does.

  --accept ADDR          address to listen on: 443, :443, 127.0.0.1:443, [::1]:443
  --connect ADDR         backend to forward to (host defaults to 127.0.0.1)
  --cert FILE            PEM certificate chain
  --key FILE             PEM private key
  -fd N                  read the configuration from file descriptor N (as stunnel -fd N)
  -t, --test             check the configuration and certificates, then exit
  --workers N            worker processes sharing the listeners (default 1)
  --max-connections N    open connections per listener before new ones are dropped (default 10000)
  --drain-timeout SEC    on SIGTERM, how long open connections may finish (default 10)
  --alpn-protos LIST     with a stunnel.conf: offer ALPN (h2,http/1.1), which stunnel cannot
                         (edgestack); with hitch's command line it is hitch's own option
  --metrics ADDR         serve /metrics, /healthz and /readyz on ADDR (edgestack; not stunnel's)
  --drain-delay SEC      with --metrics: on a stop signal /readyz says 503 at once, and the
                         listeners keep accepting SEC seconds more before the drain (default 0)
  --log-format text|json the daemon's own log as text lines or JSON objects, the connection
                         id a field (edgestack; default text)
  -h, --help, -help      show this help
  -version               say which stunnel this mirrors

  cert --out DIR         make a development CA and a localhost certificate in DIR
  acme ... FILE          obtain and renew FILE's certificate from an ACME CA (acme --help)

Certificate and key files are watched: a change reloads as SIGHUP does, once they settle.
Signals: SIGHUP reloads FILE and the certificates; SIGTERM drains, then stops; SIGQUIT
stops gracefully (waits for every connection); SIGUSR1 reopens the log file.
`

const VERSION = 'tls-terminator: reads stunnel.conf as stunnel 5.68 does (see the README for the differences)\n'

/**
 * stunnel's own command-line forms, matched as stunnel matches them (the first argument, any
 * case; stunnel(8)): `-help` and `-version` print and exit 0; `-fd N` reads the configuration
 * from descriptor N instead of a file. Anything else is ours (a FILE, or the flags).
 */
function stunnelCommandLine(argv: string[]): 'help' | 'version' | { fd: number; rest: string[] } | undefined {
  const first = argv[0]?.toLowerCase()
  if (first === '-help') return 'help'
  if (first === '-version') return 'version'
  if (first !== '-fd') return undefined
  const n = argv[1]
  if (n === undefined) throw new UsageError('-fd: no file descriptor specified')
  if (!/^\d{1,9}$/.test(n)) throw new UsageError(`-fd: "${n}" is not a file descriptor number`)
  return { fd: Number(n), rest: argv.slice(2) }
}

/** How the primary hands the shared session-ticket keys to its workers. */
const TICKET_KEYS_ENV = 'TLS_TERMINATOR_TICKET_KEYS'

// SIGUSR1 is stunnel's "reopen the log file" (Debian's logrotate sends it). Node's default for
// it is to open the inspector on 127.0.0.1:9229, which would let any local user run code in
// this process: a listener, installed before anything else, turns that off (as runMain's
// guardSigusr1 does for every daemon); this one also reopens the logs, in the primary too.
let onReopenLogs: () => void = () => undefined
process.on('SIGUSR1', () => onReopenLogs())

if (cluster.isWorker) {
  // A SIGHUP sent to the whole process group (a service manager, `kill -HUP -PGID`) can reach a
  // worker before it has read its configuration; the default action would kill it. It ignores
  // that one: the primary sends it SIGHUP again once it listens if a reload was asked meanwhile.
  process.on('SIGHUP', () => undefined)
}

runMain('tls-terminator', async () => {
  const argv = process.argv.slice(2)
  if (argv[0] === 'cert') {
    const { values } = parseCommandLine(argv.slice(1), { options: { out: { type: 'string' } } })
    if (!values.out) throw new UsageError('cert: --out DIR is required')
    const { files, created } = await ensureDevCertificates(values.out)
    process.stdout.write(`${created ? 'created' : 'kept existing'} ${files.cert}, ${files.key} (CA: ${files.caCert})\n`)
    return
  }
  // Loaded only for the subcommand: acme-client and axios are not the daemon's to carry.
  if (argv[0] === 'acme') return (await import('./acme/acme-command.js')).runAcmeCommand(argv.slice(1))
  const stunnelForm = stunnelCommandLine(argv)
  if (stunnelForm === 'help') {
    process.stdout.write(HELP)
    return
  }
  if (stunnelForm === 'version') {
    process.stdout.write(VERSION)
    return
  }
  const fd = stunnelForm?.fd
  // hitch's command line (`--config=FILE`, `--frontend`, `--backend`) reads a hitch.conf and
  // hitch's flags; anything else is stunnel's (a stunnel.conf FILE, -fd N, or the flags).
  const hitch = !stunnelForm && isHitchCommandLine(argv) ? parseHitchCommandLine(argv) : undefined
  if (!hitch) {
    const option = hitchOnlyOption(argv)
    if (option) throw new UsageError(`${option} is one of hitch's options: give it with --config=hitch.conf or --frontend/--backend`)
  }
  const { values, positionals } = parseCommandLine(hitch ? hitch.rest : stunnelForm ? stunnelForm.rest : argv, {
    allowPositionals: true,
    options: {
      accept: { type: 'string' },
      connect: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      test: { type: 'boolean', short: 't' },
      workers: { type: 'string' },
      'max-connections': { type: 'string' },
      'drain-timeout': { type: 'string' },
      metrics: { type: 'string' },
      'drain-delay': { type: 'string' },
      'alpn-protos': { type: 'string' },
      'log-format': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    process.stdout.write(HELP)
    return
  }
  const flagWorkers = count(values.workers, '--workers', 1, 256)
  const logFormat = parseLogFormat(values['log-format'])
  // Without --max-connections, the limit follows RLIMIT_NOFILE (two descriptors a client, a
  // reserve kept back): past it a client is closed at accept, before its handshake, rather
  // than accepted into a process with no descriptor left for its backend connection.
  const fdLimit = values['max-connections'] === undefined ? await openFileLimit() : undefined
  const budget = fdLimit === undefined ? undefined : Math.min(DEFAULT_MAX_CONNECTIONS, connectionBudget(fdLimit))
  const buildOpts = {
    ...optional('maxConnections', count(values['max-connections'], '--max-connections', 1, 10_000_000) ?? budget),
    ...optional('drainTimeoutMs', mul(count(values['drain-timeout'], '--drain-timeout', 0, 86_400), 1000)),
    ...optional('metrics', values.metrics === undefined ? undefined : parseAddress(values.metrics, '127.0.0.1')),
    drainDelayMs: parseDrainDelay(values['drain-delay'], values.metrics !== undefined),
    ...optional('alpnProtocols', values['alpn-protos'] === undefined ? undefined : alpnFlag(values['alpn-protos'])),
  }
  const flagNames = ['accept', 'connect', 'cert', 'key'] as const
  const usesFlags = flagNames.some((f) => values[f] !== undefined)
  if (hitch && usesFlags) throw new UsageError('--accept/--connect/--cert/--key are the stunnel flags: with hitch\'s, give --frontend, --backend and PEM files')
  if (!hitch && positionals.length > 1) throw new UsageError(`one configuration file expected, got ${positionals.length}`)
  if (usesFlags && positionals.length > 0) throw new UsageError('give either a configuration file or --accept/--connect/--cert/--key')
  if (fd !== undefined && (usesFlags || positionals.length > 0)) throw new UsageError('-fd N replaces the configuration file')
  if (fd !== undefined && (flagWorkers ?? 1) > 1) throw new UsageError('-fd N cannot be read by --workers: give a configuration file')
  const file = positionals[0]
  if (!hitch && !usesFlags && !file && fd === undefined) {
    throw new UsageError('a configuration file or --accept/--connect/--cert/--key is required')
  }
  if (usesFlags) for (const flag of flagNames) if (!values[flag]) throw new UsageError(`--${flag} is required`)

  let fromFd: Promise<BuiltModel> | undefined
  const load = (): Promise<BuiltModel> => {
    if (hitch) return loadHitch(hitch.config, hitch.settings, positionals, buildOpts)
    if (fd !== undefined) {
      // The descriptor has been read to its end: a reload keeps that configuration and reads
      // its certificate files again (prepare.ts), which is what a renewed certificate needs.
      fromFd ??= loadStunnelConf({ fd }, buildOpts)
      return fromFd
    }
    return file
      ? loadStunnelConf(file, buildOpts)
      : Promise.resolve(modelFromFlags(values as { accept: string; connect: string; cert: string; key: string }, buildOpts))
  }

  const built = await load()
  const { model } = built
  const workers = flagWorkers ?? (built as Partial<HitchBuilt>).workers ?? 1
  const inheritedKeys = cluster.isWorker ? process.env[TICKET_KEYS_ENV] : undefined
  const ticketKeys = inheritedKeys ? Buffer.from(inheritedKeys, 'hex') : randomTicketKeys()

  if (values.test) {
    const prepared = await prepare(model, { ticketKeys })
    for (const line of [...built.warnings, ...prepared.warnings]) process.stderr.write(`warning: ${line}\n`)
    process.stdout.write(`${model.global.source}: configuration OK (${model.listeners.length} listener(s))\n`)
    return
  }

  if (model.global.output) await checkWritable(model.global.output, model.global.source)
  const logger = createLogger({
    name: cluster.isWorker ? `tls-terminator[${cluster.worker?.id}]` : 'tls-terminator',
    level: logLevel(model),
    format: logFormat,
    ...optional('file', model.global.output),
    // stunnel(8): `foreground = yes` logs to the terminal too, `quiet` only to `output`.
    alsoStdout: model.global.foreground === 'yes',
  })
  onReopenLogs = () => {
    reopenLogFiles(logger)
    logger.info('SIGUSR1: log file reopened')
    if (cluster.isPrimary) for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGUSR1')
  }
  if (!cluster.isWorker) {
    for (const w of built.warnings) logger.warn(w)
    if (budget !== undefined) logger.info(`connection limit ${budget} per listener (RLIMIT_NOFILE ${fdLimit}: two descriptors a client)`)
    if (model.global.foreground === 'no') {
      logger.warn('foreground = no: tls-terminator stays in the foreground; let the service manager run it in the background')
    }
  }

  if (workers > 1 && cluster.isPrimary) {
    // Fail here, before forking, on anything a worker would fail on.
    await prepare(model, { ticketKeys })
    await runPrimary(workers, model, logger, ticketKeys.toString('hex'), load)
    return
  }

  // --metrics: in this process when it serves alone, bound before the listeners.
  const stats = new TerminatorStats()
  const reloads = new ReloadStats()
  const ops =
    model.metrics && !cluster.isWorker
      ? new OpsServer({ address: model.metrics, drainDelayMs: model.drainDelayMs, collect: () => [...stats.families(), ...reloads.families()] })
      : undefined
  await ops?.listen()
  const terminator = createTlsTerminator(model, logger, { ticketKeys, stats })
  try {
    await terminator.listen()
  } catch (err) {
    // A worker's IPC channel would keep it alive with nothing to do; let it exit so the
    // primary sees it die before listening.
    cluster.worker?.disconnect()
    throw err
  }
  const pidFile = cluster.isWorker ? undefined : pidFileOf(model)
  await pidFile?.write()
  dropPrivileges(model, logger)
  const watch = cluster.isWorker ? undefined : certificateWatch(logger, () => signals?.order({ kind: 'reload' }, 'certificate files changed'))
  watch?.update(certificateFiles(model))
  const service: Service = {
    close: async (o) => {
      watch?.close()
      await terminator.close(o)
      await pidFile?.remove()
    },
    reload: async () => {
      const next = await reloadModel(load, logger)
      await terminator.reload(next)
      watch?.update(certificateFiles(next))
    },
  }
  let signals: ReturnType<typeof handleSignals> | undefined
  if (cluster.isWorker) {
    // The primary's orders only (daemon/child-orders.ts): Ctrl-C and service managers signal the
    // whole process group, and obeying those too would stop a worker twice, skipping the drain.
    obeyManager({ ...service, reopenLogs: () => reopenLogFiles(logger) }, { logger, drainTimeoutMs: model.drainTimeoutMs })
    onReopenLogs = () => undefined
    answerMetricRequests(() => stats.families())
    reportReady()
  } else {
    signals = handleSignals(service, {
      logger,
      drainTimeoutMs: model.drainTimeoutMs,
      onReloaded: (err) => reloads.count(err),
      ...(ops ? { beforeStop: ops.beforeStop } : {}),
    })
    ops?.markReady()
  }
})

async function reloadModel(load: () => Promise<BuiltModel>, logger: Logger): Promise<TerminatorModel> {
  const next = await load()
  for (const w of next.warnings) logger.warn(w)
  return next.model
}

/**
 * N workers share each listening socket through node:cluster, under the daemon layer's
 * manager: it starts a dead worker again with backoff, turns signals into orders (SIGHUP: every
 * worker reloads, and one that fails keeps its old config; SIGTERM/SIGQUIT: they drain), and
 * owns the pid file. Workers that die before they ever listened (a port, a file: the primary
 * checked the configuration) fail start-up instead of forking in a loop.
 */
async function runPrimary(
  n: number,
  model: TerminatorModel,
  logger: Logger,
  ticketKeysHex: string,
  load: () => Promise<BuiltModel>,
): Promise<void> {
  // Workers accept from the shared listening socket themselves (as nginx's workers do) instead
  // of node's default on Linux, where the primary accepts every connection and hands it to a
  // worker over IPC: that hand-off cost about 0.3 ms of CPU per connection, a quarter of a full
  // TLS handshake. A worker busy with handshakes is not waiting in accept, so the idle one takes
  // the next connection. NODE_CLUSTER_SCHED_POLICY=rr still chooses node's round-robin.
  if (!process.env.NODE_CLUSTER_SCHED_POLICY) cluster.schedulingPolicy = cluster.SCHED_NONE
  const pidFile = pidFileOf(model)
  // --metrics lives in the primary, which outlives a worker's restart; the counters are the
  // workers', asked for over their IPC channel at each scrape and summed.
  let children: () => ChildProcess[] = () => []
  const reloads = new ReloadStats()
  const ops = model.metrics
    ? new OpsServer({
        address: model.metrics,
        drainDelayMs: model.drainDelayMs,
        collect: async () => [...(await collectFromChildren(children())), ...reloads.families()],
      })
    : undefined
  await ops?.listen()
  const manager = await runManager({
    logger,
    noun: 'worker',
    children: n,
    addresses: [],
    spawn: () => cluster.fork({ [TICKET_KEYS_ENV]: ticketKeysHex, EDGESTACK_MANAGED: '1' }).process,
    ...(pidFile ? { pidFile } : {}),
    reopenLogs: () => reopenLogFiles(logger),
    ...optional('drainTimeoutMs', model.drainTimeoutMs),
    ...(ops ? { beforeStop: ops.beforeStop } : {}),
    onReloaded: (err) => {
      reloads.count(err)
      // The workers read the configuration; the manager reads it again only for the file list.
      if (!err) load().then((b) => watch.update(certificateFiles(b.model)), () => undefined)
    },
  })
  // Every worker reloads, as on SIGHUP: the manager counts the outcome once.
  const watch = certificateWatch(logger, () => void manager.reload('certificate files changed'))
  watch.update(certificateFiles(model))
  children = manager.children
  ops?.markReady()
  onReopenLogs = () => undefined
  dropPrivileges(model, logger)
}

/** A changed certificate file is a SIGHUP (stunnel reads certificates only then; we also watch them). */
function certificateWatch(logger: Logger, reload: () => void): CertificateWatch {
  return new CertificateWatch({
    onChange: reload,
    onError: (err) => logger.warn(`cannot watch the certificate files (SIGHUP still reloads them): ${err.message}`),
  })
}

/** winston would create missing directories; stunnel refuses a log file it cannot open, and so do we. */
async function checkWritable(file: string, source: string): Promise<void> {
  try {
    await (await open(file, 'a')).close()
  } catch (err) {
    throw new StartupError(`${source}: output: cannot open ${file}: ${(err as NodeJS.ErrnoException).code}`)
  }
}

function pidFileOf(model: TerminatorModel): PidFile | undefined {
  return model.global.pid ? new PidFile(model.global.pid) : undefined
}

/** stunnel drops root after binding: setgid first, while we still may, then setuid. */
function dropPrivileges(model: TerminatorModel, logger: Logger): void {
  const { setuid, setgid } = model.global
  if (!setuid && !setgid) return
  if (process.getuid?.() !== 0) {
    logger.info('setuid/setgid: not running as root, nothing to drop')
    return
  }
  if (setgid) process.setgid?.(setgid)
  if (setuid) process.setuid?.(setuid)
  logger.info(`running as ${setuid ?? 'root'}:${setgid ?? 'root'}`)
}

/** stunnel's syslog levels onto winston's: notice (5) and info (6) both show connection lines. */
function logLevel(model: TerminatorModel): LogLevel {
  const levels = [model.global.debug, ...model.listeners.flatMap((l) => [l.service, ...l.virtualHosts.map((v) => v.service)].map((s) => s.debug))]
  const max = Math.max(...levels)
  if (max >= 7) return 'debug'
  if (max >= 5) return 'info'
  if (max === 4) return 'warn'
  return 'error'
}

/** `--alpn-protos h2,http/1.1` with a stunnel.conf (edgestack's; stunnel has no ALPN): hitch's list syntax. */
function alpnFlag(list: string): string[] {
  const protos = list.split(',').map((p) => p.trim())
  if (protos.some((p) => p === '' || Buffer.byteLength(p) > 255)) {
    throw new UsageError(`--alpn-protos: "${list}" is bad: a protocol is empty or longer than 255 bytes`)
  }
  return protos
}

function count(text: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (text === undefined) return undefined
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`${flag}: "${text}" is not a number from ${min} to ${max}`)
  }
  return Number(text)
}

function mul(n: number | undefined, by: number): number | undefined {
  return n === undefined ? undefined : n * by
}

function optional<K extends string, V>(key: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [key]: v }) as { [P in K]?: V }
}
