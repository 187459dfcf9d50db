#!/usr/bin/env node
import { createAccessLog, createLogger, handleSignals, parseAddress, parseCommandLine, runMain } from '@edgestack/common'
import { createCachingRouter } from './server.js'

const HELP = `Usage: caching-router [-a ADDR] [--static-backend ADDR] [--app-backend ADDR]

Routes HTTP as the article's VCL does (varnishd's job): \\.(js|css|img)$ to the static
server, everything else to the app; websockets and /socket.io/ piped to the app.

  -a ADDR                 address to listen on (default :8080)
  --static-backend ADDR   static-server / nginx (default 127.0.0.1:8081)
  --app-backend ADDR      the socket.io app (default 127.0.0.1:3000)
  -h, --help              show this help
`

runMain('caching-router', async () => {
  const { values } = parseCommandLine(process.argv.slice(2), {
    options: {
      a: { type: 'string', short: 'a' },
      'static-backend': { type: 'string' },
      'app-backend': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    process.stdout.write(HELP)
    return
  }
  const logger = createLogger({ name: 'caching-router' })
  const router = createCachingRouter(
    {
      listen: parseAddress(values.a ?? ':8080'),
      staticBackend: parseAddress(values['static-backend'] ?? '127.0.0.1:8081', '127.0.0.1'),
      appBackend: parseAddress(values['app-backend'] ?? '127.0.0.1:3000', '127.0.0.1'),
    },
    logger,
    createAccessLog(),
  )
  await router.listen()
  handleSignals(router, { logger })
})
