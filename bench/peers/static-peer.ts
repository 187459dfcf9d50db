#!/usr/bin/env node
// What a Node user would otherwise pick to serve files: serve-static on node:http.
import http from 'node:http'
import { parseCommandLine, runMain } from '@edgestack/common'
import { listenOn } from './listen.js'
import serveStatic from 'serve-static'

runMain('bench-static-peer', async () => {
  const { values } = parseCommandLine(process.argv.slice(2), {
    options: { port: { type: 'string' }, root: { type: 'string' } },
  })
  const serve = serveStatic(values.root ?? '.', { index: ['index.html'] })
  const server = http.createServer({ keepAliveTimeout: 75_000 }, (req, res) => {
    serve(req, res, () => {
      res.statusCode = 404
      res.end()
    })
  })
  await listenOn(server, values.port)
})
