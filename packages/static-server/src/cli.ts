#!/usr/bin/env node
import { resolve } from 'node:path'
import { createAccessLog, createLogger, handleSignals, parseAddress, parseCommandLine, runMain } from '@edgestack/common'
import { createStaticServer } from './server.js'

const HELP = `Usage: static-server --root DIR [--listen ADDR] [--proxy ADDR]

Serves files as the article's nginx.conf does (nginx's job): location = / and anything
try_files cannot find ($uri $uri/ @proxy) are proxied to the app.

  --listen ADDR   address to listen on (default :8081)
  --root DIR      document root
  --proxy ADDR    the app behind @proxy (default 127.0.0.1:3000)
  -h, --help      show this help
`

runMain('static-server', async () => {
  const { values } = parseCommandLine(process.argv.slice(2), {
    options: {
      listen: { type: 'string' },
      root: { type: 'string' },
      proxy: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    process.stdout.write(HELP)
    return
  }
  const logger = createLogger({ name: 'static-server' })
  const server = createStaticServer(
    {
      listen: parseAddress(values.listen ?? ':8081'),
      root: resolve(values.root ?? '.'),
      index: ['index.html'],
      proxy: parseAddress(values.proxy ?? '127.0.0.1:3000', '127.0.0.1'),
    },
    logger,
    createAccessLog(),
  )
  await server.listen()
  handleSignals(server, { logger })
})
