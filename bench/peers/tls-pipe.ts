#!/usr/bin/env node
// What a Node user would otherwise write to terminate TLS: node:tls piped into net.connect.
import { readFile } from 'node:fs/promises'
import net from 'node:net'
import tls from 'node:tls'
import { parseCommandLine, runMain } from '@edgestack/common'
import { listenOn } from './listen.js'

runMain('bench-tls-pipe', async () => {
  const { values } = parseCommandLine(process.argv.slice(2), {
    options: { port: { type: 'string' }, target: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' } },
  })
  const [host, port] = String(values.target).split(':') as [string, string]
  const server = tls.createServer(
    { cert: await readFile(String(values.cert)), key: await readFile(String(values.key)) },
    (client) => {
      const upstream = net.connect(Number(port), host)
      client.on('error', () => upstream.destroy())
      upstream.on('error', () => client.destroy())
      client.pipe(upstream).pipe(client)
    },
  )
  server.on('tlsClientError', () => {})
  await listenOn(server, values.port)
})
