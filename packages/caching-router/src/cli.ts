#!/usr/bin/env node
import { fileURLToPath } from 'node:url'
import {
  awaitServeOrder,
  createAccessLog,
  createLogger,
  handleSignals,
  inheritListenFds,
  isManagedChild,
  LISTEN_FDS_ENV,
  obeyManager,
  PidFile,
  reportReady,
  runMain,
  runManager,
  StartupError,
} from '@edgestack/common'
import { adminCommand } from './admin-client.js'
import type { CliModel } from './config/model.js'
import { Manager } from './mgt/manager.js'
import { HELP, parseRouterCommandLine, parseStatCommandLine } from './config/command-line.js'
import { readSecret } from './secret-file.js'
import { createCachingRouter } from './server.js'
import { checkVclFile, loadVclText, VclError } from './vcl/index.js'

runMain('caching-router', async () => {
  const argv = process.argv.slice(2)
  if (argv[0] === 'stat') {
    const stat = parseStatCommandLine(argv.slice(1))
    const { status, body } = await adminCommand(stat.address, await readSecret(stat.secretFile), 'stats')
    if (status !== 200) throw new StartupError(`stats: ${status} ${body.trim()}`)
    process.stdout.write(body)
    return
  }
  const model = parseRouterCommandLine(argv)
  if (model.help) {
    process.stdout.write(HELP)
    return
  }
  if (model.debug || model.reverseCli !== undefined) return runCliManager(model)
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
    const logger = createLogger({ name: 'caching-router' })
    // listen() compiles the VCL (-f, or the text -b stands for) and reads -S before binding.
    const router = createCachingRouter(model, logger, createAccessLog())
    await router.listen()
    obeyManager(model.vcl.kind === 'file' ? router : { close: router.close }, { logger })
    reportReady()
  } catch (err) {
    if (!(err instanceof VclError)) throw err
    // varnishd exits 2 when the VCL does not compile, with the compiler's message.
    process.stderr.write(`Message from VCC-compiler:\n${err.message}\nRunning VCC-compiler failed, exited with 2\nVCL compilation failed\n`)
    process.exitCode = 2
  }
})

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
  await runManager({
    logger: createLogger({ name: 'caching-router' }),
    noun: 'child',
    children: 1,
    // TCP listeners are the manager's, handed down; a Unix socket (-a /path) the child binds.
    addresses: [...model.listen.flatMap((l) => ('path' in l.address ? [] : [l.address])), ...(model.admin ? [model.admin.address] : [])],
    childArgs: [fileURLToPath(import.meta.url), ...argv],
    spare: true,
    ...(model.pidFile === undefined ? {} : { pidFile: new PidFile(model.pidFile) }),
  })
}

/**
 * varnishd's manager mode, as varnishtest starts it (-d, -M): the CLI first, serving after
 * `start` (at once without -d, when there is a VCL), the process ending with stdin under -d.
 * One process: the CLI's start and stop start and stop the router in it.
 */
async function runCliManager(model: CliModel): Promise<void> {
  const logger = createLogger({ name: 'caching-router' })
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
