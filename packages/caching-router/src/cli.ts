#!/usr/bin/env node
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import {
  awaitServeOrder,
  createAccessLog,
  createLogger,
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
import { HELP, parseRouterCommandLine, parseStatCommandLine } from './command-line.js'
import { createCachingRouter, type RouterModel } from './server.js'
import { vclRouterParts } from './vcl-policy.js'
import { checkVclFile, VclError, VclRegistry } from './vcl/index.js'

async function readSecret(file: string | undefined): Promise<Buffer | undefined> {
  if (file === undefined) return undefined
  try {
    return await readFile(file)
  } catch (err) {
    throw new StartupError(`-S ${file}: ${(err as Error).message}`, { cause: err })
  }
}

/** `-f FILE`: compile, run vcl_init and start the probes, before any port is bound. */
async function withVcl(file: string): Promise<Partial<RouterModel>> {
  const vcl = new VclRegistry()
  await vcl.load('boot', file)
  vcl.use('boot')
  return { ...vclRouterParts(vcl), vcl, vclFile: file }
}

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
  try {
    if (model.check && model.vclFile !== undefined) {
      // varnishd -C prints the C it generated; we print what the VCL compiled into.
      process.stdout.write(`${(await checkVclFile(model.vclFile)).describe()}\n`)
      return
    }
    const secret = await readSecret(model.secretFile)
    if (!isManagedChild()) {
      // The manager (varnishd's mgt process): the VCL must compile before any port is bound, the
      // sockets are bound here and kept, and the child that serves is started, and started
      // again when it dies, with the same command line.
      if (model.vclFile !== undefined) await checkVclFile(model.vclFile)
      const logger = createLogger({ name: 'caching-router' })
      await runManager({
        logger,
        noun: 'child',
        children: 1,
        addresses: [...model.listen.map((l) => l.address), ...(model.adminAddress ? [model.adminAddress] : [])],
        childArgs: [fileURLToPath(import.meta.url), ...argv],
        spare: true,
        ...(model.pidFile === undefined ? {} : { pidFile: new PidFile(model.pidFile) }),
      })
      return
    }
    inheritListenFds(process.env[LISTEN_FDS_ENV])
    await awaitServeOrder()
    const vcl = model.vclFile === undefined ? {} : await withVcl(model.vclFile)
    const logger = createLogger({ name: 'caching-router' })
    const router = createCachingRouter(
      { ...model, ...vcl, admin: model.adminAddress ? { address: model.adminAddress, secret } : undefined },
      logger,
      createAccessLog(),
    )
    await router.listen()
    obeyManager(model.vclFile === undefined ? { close: router.close } : router, { logger })
    reportReady()
  } catch (err) {
    if (!(err instanceof VclError)) throw err
    // varnishd exits 2 when the VCL does not compile, with the compiler's message.
    process.stderr.write(`Message from VCC-compiler:\n${err.message}\nRunning VCC-compiler failed, exited with 2\nVCL compilation failed\n`)
    process.exitCode = 2
  }
})
