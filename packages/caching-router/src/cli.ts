#!/usr/bin/env node
import { writeFile } from 'node:fs/promises'
import { createAccessLog, createLogger, handleSignals, runMain, StartupError } from '@edgestack/common'
import { batchAccessLog } from './access-batch.js'
import { adminCommand } from './admin-client.js'
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
