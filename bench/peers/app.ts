#!/usr/bin/env node
// The app behind the full chain: a websocket echo (scenario 8) and an uncacheable 1 KiB page
// for anything else, in place of the socket.io demo whose own cost is not what is measured.
import http from 'node:http'
import { parseCommandLine, runMain } from '@edgestack/common'
import { listenOn } from './listen.js'
import { WebSocketServer } from 'ws'

const BODY = Buffer.alloc(1024, 'a')

runMain('bench-app', async () => {
  const { values } = parseCommandLine(process.argv.slice(2), { options: { port: { type: 'string' } } })
  const server = http.createServer({ keepAliveTimeout: 75_000 }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length, 'cache-control': 'no-store' })
    res.end(BODY)
  })
  const wss = new WebSocketServer({ server, maxPayload: 64 * 1024 })
  wss.on('connection', (ws) => {
    ws.on('error', () => ws.terminate())
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  })
  await listenOn(server, values.port)
})
