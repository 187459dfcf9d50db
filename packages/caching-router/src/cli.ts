#!/usr/bin/env node
import { writeFile } from 'node:fs/promises'
import { createAccessLog, createLogger, handleSignals, runMain, StartupError } from '@edgestack/common'
import { batchAccessLog } from './access-batch.js'
import { adminCommand } from './admin-client.js'
import type { CliModel } from './config/model.js'
import { Manager } from './mgt/manager.js'
import { HELP, parseRouterCommandLine, parseStatCommandLine } from './config/command-line.js'
import { readSecret } from './secret-file.js'
import { createCachingRouter } from './server.js'
import { checkVclFile, VclError } from './vcl/index.js'

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
    if (model.check && model.vcl.kind === 'file') {
      // varnishd -C prints the C it generated; we print what the VCL compiled into.
      process.stdout.write(`${(await checkVclFile(model.vcl.path)).describe()}\n`)
      return
    }
    const logger = createLogger({ name: 'caching-router' })
    // listen() compiles the VCL (-f, or the text -b stands for) and reads -S before binding.
    const router = createCachingRouter(model, logger, batchAccessLog(createAccessLog()))
    await router.listen()
    if (model.pidFile !== undefined) await writeFile(model.pidFile, `${process.pid}\n`)
    handleSignals(model.vcl.kind === 'file' ? router : { close: router.close }, { logger })
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
  if (model.admin !== undefined) await manager.listenAdmin(model.admin.address)
  if (model.reverseCli !== undefined) manager.reverse(model.reverseCli)
  if (model.debug) manager.console()
  else {
    const [status, body] = await manager.start()
    if (status !== 200) throw new StartupError(body)
  }
  handleSignals({ close: () => manager.close() }, { logger })
}
