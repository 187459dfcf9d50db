#!/usr/bin/env node
import { readFile, writeFile } from 'node:fs/promises'
import { createAccessLog, createLogger, handleSignals, runMain, StartupError } from '@edgestack/common'
import { batchAccessLog } from './access-batch.js'
import { adminCommand } from './admin-client.js'
import { type CliModel, HELP, parseRouterCommandLine, parseStatCommandLine } from './command-line.js'
import { createCachingRouter, type RouterModel } from './server.js'
import { vclRouterParts } from './vcl-policy.js'
import { Manager } from './mgt/manager.js'
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
  if (model.debug || model.reverseCli !== undefined) return runManager(model)
  try {
    if (model.check && model.vclFile !== undefined) {
      // varnishd -C prints the C it generated; we print what the VCL compiled into.
      process.stdout.write(`${(await checkVclFile(model.vclFile)).describe()}\n`)
      return
    }
    const secret = await readSecret(model.secretFile)
    const vcl = model.vclFile === undefined ? {} : await withVcl(model.vclFile)
    const logger = createLogger({ name: 'caching-router' })
    const router = createCachingRouter(
      { ...model, ...vcl, admin: model.adminAddress ? { address: model.adminAddress, secret } : undefined },
      logger,
      batchAccessLog(createAccessLog()),
    )
    await router.listen()
    if (model.pidFile !== undefined) await writeFile(model.pidFile, `${process.pid}\n`)
    handleSignals(model.vclFile === undefined ? { close: router.close } : router, { logger })
  } catch (err) {
    if (!(err instanceof VclError)) throw err
    // varnishd exits 2 when the VCL does not compile, with the compiler's message.
    process.stderr.write(`Message from VCC-compiler:\n${err.message}\nRunning VCC-compiler failed, exited with 2\nVCL compilation failed\n`)
    process.exitCode = 2
  }
})

/**
 * varnishd's manager mode, as varnishtest starts it (-d, -M): the CLI first, serving after
 * `start` (at once without -d, when there is a VCL), the process ending with stdin under -d.
 */
async function runManager(model: CliModel): Promise<void> {
  const logger = createLogger({ name: 'caching-router' })
  const manager = new Manager(model, logger, batchAccessLog(createAccessLog()))
  try {
    await manager.prepare()
  } catch (err) {
    if (!(err instanceof VclError)) throw err
    process.stderr.write(`Message from VCC-compiler:\n${err.message}\nRunning VCC-compiler failed, exited with 2\nVCL compilation failed\n`)
    process.exitCode = 2
    return
  }
  if (model.adminAddress !== undefined) await manager.listenAdmin(model.adminAddress)
  if (model.reverseCli !== undefined) manager.reverse(model.reverseCli)
  if (model.debug) manager.console()
  else {
    const [status, body] = await manager.start()
    if (status !== 200) throw new StartupError(body)
  }
  handleSignals({ close: () => manager.close() }, { logger })
}
