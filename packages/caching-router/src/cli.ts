#!/usr/bin/env node
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import {
  answerMetricRequests,
  awaitServeOrder,
  collectFromChildren,
  createAccessLog,
  createLogger,
  formatAddress,
  handleSignals,
  inheritListenFds,
  isManagedChild,
  LISTEN_FDS_ENV,
  obeyManager,
  OpsServer,
  PidFile,
  reportReady,
  runMain,
  runManager,
  single,
  StartupError,
  UsageError,
} from '@edgestack/common'
import { adminCommand } from './admin-client.js'
import type { CliModel } from './config/model.js'
import { Manager } from './mgt/manager.js'
import { type FanoutCommand, HELP, parseFanoutCommandLine, parseRouterCommandLine, parseStatCommandLine } from './config/command-line.js'
import { fanoutCli, fanoutHttp } from './fanout.js'
import { varnishFamilies } from './prometheus-names.js'
import { readSecret } from './secret-file.js'
import { varnishstatJson } from './varnishstat-json.js'
import { createCachingRouter } from './server.js'
import { openChildShm, openManagerShm } from './vsm/shm.js'
import { checkVclFile, loadVclText, VclError } from './vcl/index.js'
import { WorkerPool } from './workers/worker-pool.js'

runMain('caching-router', async () => {
  const argv = process.argv.slice(2)
  if (argv[0] === 'stat') {
    const stat = parseStatCommandLine(argv.slice(1))
    const { status, body } = await adminCommand(stat.address, await readSecret(stat.secretFile), 'stats')
    if (status !== 200) throw new StartupError(`stats: ${status} ${body.trim()}`)
    process.stdout.write(stat.json ? varnishstatJson(body) : body)
    return
  }
  if (argv[0] === 'fanout') return runFanout(parseFanoutCommandLine(argv.slice(1)))
  const model = parseRouterCommandLine(argv)
  if (model.help) {
    process.stdout.write(HELP)
    return
  }
  if (model.debug || model.reverseCli !== undefined) {
    if (model.metrics) throw new UsageError('--metrics is served by the manager: not with -d or -M')
    if (model.workers > 1) throw new UsageError('--workers is for the daemon (manager and child): not with -d or -M')
    return runCliManager(model)
  }
  try {
    if (model.check) {
      // varnishd -C prints the C it generated (of -f's file or -b's text); we print what the VCL compiled into.
      const checked = model.vcl.kind === 'file' ? await checkVclFile(model.vcl.path) : await loadVclText(model.vcl, 'check')
      process.stdout.write(`${checked.describe()}\n`)
      return
    }
    if (!isManagedChild()) return await runChildManager(model, argv)
    inheritListenFds(process.env[LISTEN_FDS_ENV])
    await awaitServeOrder()
    const logger = createLogger({ name: 'caching-router', format: model.logFormat })
    // listen() compiles the VCL (-f, or the text -b stands for) and reads -S before binding.
    const workers = model.workers > 1 ? { index: 0, count: model.workers } : undefined
    // varnishncsa -j writes the bytes above 0x7e of a value as they came (a latin1 string here).
    const router = createCachingRouter(model, logger, createAccessLog(undefined, { encoding: model.accessFormat?.json ? 'latin1' : 'utf8' }), { worker: workers })
    const bound = await router.listen()
    // -n DIR: this child's counters and log for varnishstat and varnishlog, before it is reported
    // ready (with --workers, worker 0's counters: the summed ones are on -T and --metrics).
    if (model.workdir !== undefined) await openChildShm(model.workdir, model.logBytes, router, logger)
    const latency = () =>
      router.latency.family('caching_router_request_duration_seconds', 'From the request head to the last byte of the response, by handling (hit, miss, pass, pipe, synth).')
    if (workers === undefined) {
      answerMetricRequests(() => [...varnishFamilies(router.counters, router.store), latency()])
      obeyManager(model.vcl.kind === 'file' ? router : { close: router.close }, { logger })
    } else {
      // --workers N: this thread is worker 0; the others bind beside it (worker-pool.ts).
      const pool = new WorkerPool(model, router, workers.count, bound, logger)
      // The manager's orders are taken from here on, as with one worker, while the threads start.
      const close = async (o?: { drainTimeoutMs?: number }) => {
        await Promise.all([router.close(o), pool.close(o?.drainTimeoutMs ?? 10_000)])
      }
      const reload = async () => {
        await router.reload()
        pool.reload()
      }
      obeyManager(model.vcl.kind === 'file' ? { close, reload } : { close }, { logger })
      // The counters summed over the workers, as `stats` on -T (the latency histogram is worker 0's).
      answerMetricRequests(async () => {
        const { counters, extra } = await pool.summedStats()
        return [...varnishFamilies(counters, { bytes: extra.SMA_g_bytes ?? 0, maxBytes: model.storageBytes }), latency()]
      })
      await pool.start()
    }
    reportReady()
  } catch (err) {
    if (!(err instanceof VclError)) throw err
    // varnishd exits 2 when the VCL does not compile, with the compiler's message.
    process.stderr.write(`Message from VCC-compiler:\n${err.message}\nRunning VCC-compiler failed, exited with 2\nVCL compilation failed\n`)
    process.exitCode = 2
  }
})

/** `caching-router fanout`: a line per node; exit 1 (after every node was tried) when any failed. */
async function runFanout(order: FanoutCommand): Promise<void> {
  const answers = order.kind === 'cli' ? await fanoutCli(order.nodes, await readSecret(order.secretFile), order.words) : await fanoutHttp(order.nodes, order)
  for (const a of answers) process.stdout.write(`${formatAddress(a.node)}: ${a.line}\n`)
  const failed = answers.filter((a) => !a.ok).length
  if (failed > 0) throw new StartupError(`fanout: ${failed} of ${answers.length} nodes failed`)
}

/**
 * varnishd's manager and child, as processes (the daemon layer's runManager): the manager
 * refuses a VCL that does not compile and an unreadable -S before any port is bound, binds
 * every -a address and -T and keeps them, writes -P, and runs the child that serves with the
 * same command line; a dead child's place is taken by a spare loaded beforehand, and a child
 * that dies in a loop is started again after growing waits.
 */
async function runChildManager(model: CliModel, argv: readonly string[]): Promise<void> {
  if (model.vcl.kind === 'file') await checkVclFile(model.vcl.path)
  await readSecret(model.admin?.secretFile)
  const shm =
    model.workdir === undefined
      ? undefined
      : await openManagerShm(model.workdir, { identity: model.identity, secretFile: model.admin?.secretFile, admin: model.admin?.address })
  // --metrics lives in the manager, so that it outlives a child's restart; the counters are the
  // child's, asked for over the IPC channel at each scrape.
  let children: () => ChildProcess[] = () => []
  const ops = model.metrics
    ? new OpsServer({
        address: model.metrics,
        drainDelayMs: model.drainDelayMs,
        // prometheus_varnish_exporter's own gauge: 1 when varnishstat could be read.
        collect: async () => [...(await collectFromChildren(children())), single('varnish_up', 'gauge', 'Was the last scrape of varnish successful.', 1)],
      })
    : undefined
  await ops?.listen()
  const manager = await runManager({
    logger: createLogger({ name: 'caching-router', format: model.logFormat }),
    noun: 'child',
    children: 1,
    // TCP listeners are the manager's, handed down; a Unix socket (-a /path) the child binds.
    addresses: [...model.listen.flatMap((l) => ('path' in l.address ? [] : [l.address])), ...(model.admin ? [model.admin.address] : [])],
    childArgs: [fileURLToPath(import.meta.url), ...argv],
    spare: true,
    // --workers: the threads bind sockets of their own beside the one handed down (worker-pool.ts).
    ...(model.workers > 1 ? { reusePort: model.listen.flatMap((l) => ('path' in l.address ? [] : [l.address])) } : {}),
    ...(ops || shm
      ? {
          beforeStop: async () => {
            await ops?.beforeStop()
            // Readers see the manager gone (varnishd's exit removes its set too).
            await shm?.remove()
          },
        }
      : {}),
    ...(model.pidFile === undefined ? {} : { pidFile: new PidFile(model.pidFile) }),
  })
  children = manager.children
  ops?.markReady()
}

/**
 * varnishd's manager mode, as varnishtest starts it (-d, -M): the CLI first, serving after
 * `start` (at once without -d, when there is a VCL), the process ending with stdin under -d.
 * One process: the CLI's start and stop start and stop the router in it.
 */
async function runCliManager(model: CliModel): Promise<void> {
  const logger = createLogger({ name: 'caching-router', format: model.logFormat })
  const manager = new Manager(model, logger, createAccessLog())
  try {
    await manager.prepare()
  } catch (err) {
    if (!(err instanceof VclError)) throw err
    process.stderr.write(`Message from VCC-compiler:\n${err.message}\nRunning VCC-compiler failed, exited with 2\nVCL compilation failed\n`)
    process.exitCode = 2
    return
  }
  if (model.admin !== undefined) await manager.listenAdmin(model.admin.address)
  if (model.reverseCli !== undefined) manager.reverse(model.reverseCli)
  if (model.debug) manager.console()
  else {
    const [status, body] = await manager.start()
    if (status !== 200) throw new StartupError(body)
  }
  handleSignals({ close: () => manager.close() }, { logger })
}
