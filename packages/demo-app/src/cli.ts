#!/usr/bin/env node
import { hostname } from 'node:os'
import { fileURLToPath } from 'node:url'
import { createLogger, handleSignals, parseAddress, parseCommandLine, parseLogFormat, runMain, UsageError } from '@edgestack/common'
import { createDemoApp } from './app.js'

const HELP = `Usage: demo-app [--listen ADDR] [--redis URL]

The article's socket.io app: the page at /, socket.io at /socket.io/.
Its static assets (app.js, app.css) are in ${fileURLToPath(new URL('../../public/', import.meta.url))}
and are served by static-server.

  --listen ADDR   address to listen on (default 127.0.0.1:3000; env PORT sets the port)
  --redis URL     share rooms and broadcasts with the other instances through this Redis
                  (redis://host:port; env REDIS_URL): socket.io's Redis adapter, sharded on
                  Redis 7 and later. Without it the instance stands alone.
  --log-format text|json  log lines as text or JSON objects (default text)
  -h, --help      show this help
`

runMain('demo-app', async () => {
  const { values } = parseCommandLine(process.argv.slice(2), {
    options: { listen: { type: 'string' }, redis: { type: 'string' }, 'log-format': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  })
  if (values.help) {
    process.stdout.write(HELP)
    return
  }
  const logger = createLogger({ name: 'demo-app', format: parseLogFormat(values['log-format']) })
  const listen = parseAddress(values.listen ?? `127.0.0.1:${process.env.PORT ?? 3000}`, '127.0.0.1')
  const redis = values.redis ?? (process.env.REDIS_URL || undefined)
  if (redis !== undefined && !/^rediss?:\/\/[^/\s]+/.test(redis)) {
    throw new UsageError(`--redis: expected redis://HOST:PORT, got "${redis}"`)
  }
  const app = createDemoApp(
    {
      listen,
      indexFile: fileURLToPath(new URL('../../views/index.html', import.meta.url)),
      redis,
      instance: `${hostname()}:${listen.port}`,
    },
    logger,
  )
  await app.listen()
  handleSignals(app, { logger })
})
