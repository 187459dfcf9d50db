#!/usr/bin/env node
// What a Node user would otherwise pick to pass requests through: node-http-proxy with a
// keep-alive agent to the origin.
import http from 'node:http'
import { parseCommandLine, runMain } from '@edgestack/common'
import { listenOn } from './listen.js'
import httpProxy from 'http-proxy'

runMain('bench-proxy-peer', async () => {
  const { values } = parseCommandLine(process.argv.slice(2), {
    options: { port: { type: 'string' }, target: { type: 'string' } },
  })
  const agent = new http.Agent({ keepAlive: true, maxSockets: 128 })
  const proxy = httpProxy.createProxyServer({ target: `http://${values.target}`, agent, xfwd: true })
  proxy.on('error', (_err, _req, res) => {
    if (res instanceof http.ServerResponse && !res.headersSent) {
      res.writeHead(502)
      res.end()
    } else {
      res.destroy()
    }
  })
  const server = http.createServer({ keepAliveTimeout: 5000 }, (req, res) => proxy.web(req, res))
  await listenOn(server, values.port)
})
