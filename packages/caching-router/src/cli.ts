#!/usr/bin/env node
import { readFile, writeFile } from 'node:fs/promises'
import { createAccessLog, createLogger, handleSignals, runMain, StartupError } from '@edgestack/common'
import { batchAccessLog } from './access-batch.js'
import { adminCommand } from './admin-client.js'
import { HELP, parseRouterCommandLine, parseStatCommandLine } from './command-line.js'
import { createCachingRouter } from './server.js'

async function readSecret(file: string | undefined): Promise<Buffer | undefined> {
  if (file === undefined) return undefined
  try {
    return await readFile(file)
  } catch (err) {
    throw new StartupError(`-S ${file}: ${(err as Error).message}`, { cause: err })
  }
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
  const secret = await readSecret(model.secretFile)
  const logger = createLogger({ name: 'caching-router' })
  const router = createCachingRouter(
    { ...model, admin: model.adminAddress ? { address: model.adminAddress, secret } : undefined },
    logger,
    batchAccessLog(createAccessLog()),
  )
  await router.listen()
  if (model.pidFile !== undefined) await writeFile(model.pidFile, `${process.pid}\n`)
  handleSignals(router, { logger })
})
