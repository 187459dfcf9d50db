#!/usr/bin/env node
import { writeFile } from 'node:fs/promises'
import { createAccessLog, createLogger, handleSignals, runMain } from '@edgestack/common'
import { HELP, parseRouterCommandLine } from './command-line.js'
import { createCachingRouter } from './server.js'

runMain('caching-router', async () => {
  const argv = process.argv.slice(2)
  const model = parseRouterCommandLine(argv)
  if (model.help) {
    process.stdout.write(HELP)
    return
  }
  const logger = createLogger({ name: 'caching-router' })
  const router = createCachingRouter(
    model,
    logger,
    createAccessLog(),
  )
  await router.listen()
  if (model.pidFile !== undefined) await writeFile(model.pidFile, `${process.pid}\n`)
  handleSignals(router, { logger })
})
