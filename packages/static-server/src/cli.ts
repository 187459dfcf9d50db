#!/usr/bin/env node
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  answerMetricRequests,
  awaitServeOrder,
  collectFromChildren,
  createLogger,
  parseLogFormat,
  openFileLimit,
  errnoText,
  handleSignals,
  inheritListenFds,
  isManagedChild,
  LISTEN_FDS_ENV,
  ListenerSet,
  type LogLevel,
  type MetricFamily,
  obeyManager,
  OpsServer,
  PidFile,
  parseAddress,
  parseCommandLine,
  parseDrainDelay,
  reopenLogFiles,
  reportReady,
  runMain,
  runManager,
  type Service,
  single,
  StartupError,
  UsageError,
} from '@edgestack/common'
import { modelFromFlags } from './config/from-flags.js'
import type { NginxModel } from './config/model.js'
import { loadNginxConf } from './config/nginx-conf.js'
import { createStaticServer, listenAddresses, type StaticServer } from './server.js'
import { serverFamilies, StubStatus } from './stub-status.js'

// nginx-prometheus-exporter's own gauge: 1 when stub_status could be read (here: always).
const NGINX_UP = single('nginx_up', 'gauge', 'Status of the last metric scrape', 1)

const NAME = 'static-server'
const HELP = `Usage: static-server [-t] [-p PREFIX] [-c FILE] [-g DIRECTIVES] [-s stop|quit|reload]
       static-server --root DIR [--listen ADDR] [--proxy ADDR]

nginx's job from nginx's own config file (the same file runs under nginx), or the article's
server block from flags: location = / and whatever try_files cannot find are proxied to the app.

  -c FILE         configuration file (default PREFIX/conf/nginx.conf)
  -p PREFIX       prefix for relative paths in the file (default: current directory)
  -g DIRECTIVES   extra main-context directives, e.g. -g 'daemon off;'
  -t              test the configuration and exit
  -s SIGNAL       send stop, quit or reload to the running server (through its pid file)
  -v              show the version
  --listen ADDR   address to listen on (default :8081)
  --root DIR      document root
  --proxy ADDR    the app behind @proxy (default 127.0.0.1:3000)
  --metrics ADDR  serve /metrics (nginx-prometheus-exporter's names), /healthz, /readyz
                  (edgestack; nginx has no such flag)
  --drain-delay SEC  with --metrics: on a stop signal /readyz says 503 at once, and the
                  listeners keep accepting SEC seconds more before the drain (default 0)
  --log-format text|json  the error log's lines as text (nginx's words) or JSON objects with
                  the connection and request ids as fields (edgestack; default text)
  -h, --help      show this help
`

// nginx -s: stop is the fast shutdown (TERM), quit the graceful one (QUIT).
const SIGNALS: Record<string, NodeJS.Signals> = { stop: 'SIGTERM', quit: 'SIGQUIT', reload: 'SIGHUP', reopen: 'SIGUSR1' }

runMain(NAME, async () => {
  const { values } = parseCommandLine(process.argv.slice(2), {
    options: {
      c: { type: 'string', short: 'c' },
      p: { type: 'string', short: 'p' },
      g: { type: 'string', short: 'g', multiple: true },
      t: { type: 'boolean', short: 't' },
      s: { type: 'string', short: 's' },
      v: { type: 'boolean', short: 'v' },
      q: { type: 'boolean', short: 'q' },
      listen: { type: 'string' },
      root: { type: 'string' },
      proxy: { type: 'string' },
      metrics: { type: 'string' },
      'drain-delay': { type: 'string' },
      'log-format': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    process.stdout.write(HELP)
    return
  }
  if (values.v) {
    process.stderr.write(`${NAME} version: ${NAME}/0.1.0 (nginx.conf compatible with nginx 1.22)\n`)
    return
  }
  const fileMode = values.c !== undefined || values.p !== undefined || values.t || values.s !== undefined || values.g !== undefined
  if (fileMode && (values.listen || values.root || values.proxy)) {
    throw new UsageError('--listen, --root and --proxy build their own config: use them without -c/-p/-g/-t/-s')
  }
  const prefix = resolve(values.p ?? '.')
  const file = resolve(prefix, values.c ?? 'conf/nginx.conf')
  const load = (): Promise<NginxModel> =>
    fileMode
      ? loadNginxConf({ file, prefix, globals: values.g ?? [] })
      : modelFromFlags(
          {
            listen: parseAddress(values.listen ?? ':8081'),
            root: resolve(values.root ?? '.'),
            proxy: parseAddress(values.proxy ?? '127.0.0.1:3000', '127.0.0.1'),
          },
          prefix,
        )

  if (values.t) {
    let model: NginxModel
    try {
      model = await load()
    } catch (err) {
      process.stderr.write(`${NAME}: ${(err as Error).message}\n${NAME}: configuration file ${file} test failed\n`)
      process.exitCode = 1
      return
    }
    for (const w of model.warnings) process.stderr.write(`${NAME}: [warn] ${w}\n`)
    if (!values.q) process.stderr.write(`${NAME}: the configuration file ${file} syntax is ok\n`)
    process.stderr.write(`${NAME}: configuration file ${file} test is successful\n`)
    return
  }

  // --metrics works with either form; parsed here so that a bad address stops before anything.
  const metrics = values.metrics === undefined ? undefined : parseAddress(values.metrics, '127.0.0.1')
  const drainDelayMs = parseDrainDelay(values['drain-delay'], metrics !== undefined)
  const logFormat = parseLogFormat(values['log-format'])
  let model = await load()
  if (values.s !== undefined) {
    const sig = SIGNALS[values.s]
    if (!sig) throw new UsageError(`invalid option: "-s ${values.s}"`)
    if (!model.pid) throw new UsageError('no pid file in the configuration')
    const text = await readFile(model.pid, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new StartupError(`[error] open() "${model.pid}" failed (${errnoText(err)})`)
    })
    const pid = Number(text.trim())
    if (!Number.isInteger(pid) || pid <= 0) throw new StartupError(`[error] invalid PID number "${text.trim()}" in "${model.pid}"`)
    process.kill(pid, sig)
    return
  }

  // The `listening on` lines are info: the level never goes above it so they are always there.
  const level = logLevel(model.errorLog.level) === 'debug' ? 'debug' : 'info'
  const logger = createLogger({ name: NAME, level, format: logFormat, ...(model.errorLog.path === 'stderr' ? {} : { file: model.errorLog.path }) })

  const pidFile = model.pid === undefined ? undefined : new PidFile(model.pid, (err) => `[emerg] open() "${model.pid}" failed (${errnoText(err)})`)
  const managed = isManagedChild()
  // Said once, by the process that read the file first (a worker reads it again).
  if (!managed) for (const w of model.warnings) logger.warn(`[warn] ${w}`)

  // worker_processes N: nginx's master. It binds and keeps the listening sockets, runs N worker
  // processes that accept on them, starts a dead one again, and reloads by starting a new
  // generation on the new configuration before retiring the old one (daemon/manager.ts).
  // --metrics lives in the master when there is one (it outlives a worker's restart; the
  // counters are the workers', asked for over the IPC channel and summed, as nginx's shared
  // memory sums them), in the one process otherwise. Bound before anything serves.
  let collect: () => Promise<MetricFamily[]> | MetricFamily[] = () => []
  const ops = metrics && !managed ? new OpsServer({ address: metrics, drainDelayMs, collect: async () => [...(await collect()), NGINX_UP] }) : undefined
  await ops?.listen()

  if (model.workers > 1 && !managed) {
    const master = await runManager({
      logger,
      noun: 'worker process',
      children: model.workers,
      addresses: listenAddresses(model),
      childArgs: [fileURLToPath(import.meta.url), ...process.argv.slice(2)],
      spare: true,
      ...(pidFile ? { pidFile } : {}),
      readConfig: async () => {
        const next = await load()
        for (const w of next.warnings) logger.warn(`[warn] ${w}`)
        return listenAddresses(next)
      },
      reopenLogs: () => reopenLogFiles(logger),
      ...(ops ? { beforeStop: ops.beforeStop } : {}),
    })
    collect = () => collectFromChildren(master.children())
    ops?.markReady()
    return
  }

  if (managed) {
    inheritListenFds(process.env[LISTEN_FDS_ENV])
    await awaitServeOrder()
  }
  const sockets = new ListenerSet()
  const stubStatus = new StubStatus()
  const serverOptions = { descriptorLimit: await openFileLimit(), stubStatus }
  collect = () => serverFamilies(stubStatus)
  let server: StaticServer = createStaticServer(model, logger, sockets, serverOptions)
  await server.listen()
  // A worker's master owns the pid file. nginx stops with `[emerg] open() "..." failed` when it
  // cannot write it; a server left running without one could not be stopped with -s.
  const ownPid = managed ? undefined : pidFile
  await ownPid?.write().catch(async (err: unknown) => {
    await server.close({ drainTimeoutMs: 0 })
    throw err
  })
  // Servers a reload replaced, still finishing their requests on the old configuration.
  const retiring = new Set<StaticServer>()
  const service: Service = {
    async close(opts) {
      await Promise.all([server, ...retiring].map((s) => s.close(opts)))
      await ownPid?.remove()
    },
    // nginx's SIGUSR1 (`-s reopen`, logrotate): access_log and error_log files opened anew.
    reopenLogs() {
      for (const s of [server, ...retiring]) s.reopenLogs()
      reopenLogFiles(logger)
    },
    // Reload by swap: the new configuration is read and its addresses bound (those it names
    // again keep their sockets) before anything changes; on any failure the running server
    // keeps serving. Then new connections go to the new server and the old one drains.
    async reload() {
      const next = await load()
      if (!managed) for (const w of next.warnings) logger.warn(`[warn] ${w}`)
      const fresh = createStaticServer(next, logger, sockets, serverOptions)
      try {
        await fresh.listen()
      } catch (err) {
        await fresh.close({ drainTimeoutMs: 0 })
        throw err
      }
      const old = server
      server = fresh
      model = next
      retiring.add(old)
      void old.close({ drainTimeoutMs: 10_000 }).then(() => retiring.delete(old))
    },
  }
  if (managed) {
    answerMetricRequests(() => serverFamilies(stubStatus))
    obeyManager(service, { logger })
    reportReady()
  } else {
    handleSignals(service, { logger, ...(ops ? { beforeStop: ops.beforeStop } : {}) })
    ops?.markReady()
  }
})

function logLevel(l: string): LogLevel {
  if (l === 'debug') return 'debug'
  if (l === 'info' || l === 'notice') return 'info'
  if (l === 'warn') return 'warn'
  return 'error'
}
