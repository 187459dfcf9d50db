#!/usr/bin/env node
import cluster from 'node:cluster'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { createLogger, handleSignals, type LogLevel, parseAddress, parseCommandLine, reopenLogFiles, runMain, StartupError, UsageError } from '@edgestack/common'
import { modelFromFlags } from './config/from-flags.js'
import type { NginxModel } from './config/model.js'
import { errnoText } from './config/errors.js'
import { loadNginxConf } from './config/nginx-conf.js'
import { createStaticServer, type StaticServer } from './server.js'

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
  -h, --help      show this help
`

const SIGNALS: Record<string, NodeJS.Signals> = { stop: 'SIGTERM', quit: 'SIGTERM', reload: 'SIGHUP', reopen: 'SIGUSR1' }

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
    try {
      await load()
    } catch (err) {
      process.stderr.write(`${NAME}: ${(err as Error).message}\n${NAME}: configuration file ${file} test failed\n`)
      process.exitCode = 1
      return
    }
    if (!values.q) process.stderr.write(`${NAME}: the configuration file ${file} syntax is ok\n`)
    process.stderr.write(`${NAME}: configuration file ${file} test is successful\n`)
    return
  }

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
  const logger = createLogger({ name: NAME, level, ...(model.errorLog.path === 'stderr' ? {} : { file: model.errorLog.path }) })

  // worker_processes N: N workers share the listening sockets through node:cluster; the
  // primary owns the pid file and passes signals on, as nginx's master does.
  if (model.workers > 1 && cluster.isPrimary) {
    for (let i = 0; i < model.workers; i++) cluster.fork()
    if (model.pid) await writeFile(model.pid, `${process.pid}\n`)
    let stopping = false
    const forward = (sig: NodeJS.Signals) => () => {
      if (sig === 'SIGTERM') stopping = true
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(sig)
    }
    process.on('SIGTERM', forward('SIGTERM'))
    process.on('SIGINT', forward('SIGTERM'))
    process.on('SIGHUP', forward('SIGHUP'))
    process.on('SIGUSR1', () => {
      reopenLogFiles(logger)
      forward('SIGUSR1')()
    })
    cluster.on('exit', (w, code) => {
      if (!stopping) {
        logger.warn(`worker ${w.process.pid} exited with ${code}; starting another`)
        cluster.fork()
      } else if (Object.keys(cluster.workers ?? {}).length === 0 && model.pid) {
        void rm(model.pid, { force: true })
      }
    })
    return
  }

  const serverOptions = { descriptorLimit: descriptorLimit() }
  let server: StaticServer = createStaticServer(model, logger, serverOptions)
  await server.listen()
  const ownsPid = model.pid !== undefined && cluster.isPrimary
  if (ownsPid) {
    // nginx stops with `[emerg] open() "..." failed` when it cannot write its pid file; a server
    // left running without one could not be stopped with -s, and has no signal handlers yet.
    await writeFile(model.pid as string, `${process.pid}\n`).catch(async (err: NodeJS.ErrnoException) => {
      await server.close({ drainTimeoutMs: 0 })
      throw new StartupError(`[emerg] open() "${model.pid}" failed (${errnoText(err)})`)
    })
  }
  handleSignals(
    {
      async close(opts) {
        await server.close(opts)
        if (ownsPid) await rm(model.pid as string, { force: true })
      },
      // nginx's SIGUSR1 (`-s reopen`, logrotate): access_log and error_log files opened anew.
      reopenLogs() {
        server.reopenLogs()
        reopenLogFiles(logger)
      },
      // Reload keeps the running server when the new file is invalid; a valid one replaces it.
      async reload() {
        const next = await load()
        const old = server
        // close() stops accepting at once and lets in-flight requests finish on the old config.
        const draining = old.close({ drainTimeoutMs: 10_000 })
        const fresh = createStaticServer(next, logger, serverOptions)
        await fresh.listen()
        server = fresh
        model = next
        await draining
      },
    },
    { logger },
  )
})

/** RLIMIT_NOFILE's soft limit (Node has no getrlimit; its diagnostic report reads it). */
function descriptorLimit(): number | undefined {
  const soft = (process.report?.getReport() as { userLimits?: { open_files?: { soft?: number | string } } } | undefined)?.userLimits?.open_files?.soft
  return typeof soft === 'number' ? soft : undefined
}

function logLevel(l: string): LogLevel {
  if (l === 'debug') return 'debug'
  if (l === 'info' || l === 'notice') return 'info'
  if (l === 'warn') return 'warn'
  return 'error'
}
