#!/usr/bin/env node
// Scenario 17's client: socket.io clients on long-polling only, each from its own loopback
// address (the chain's hash director spreads them over the app instances by it, through the
// TLS layer's PROXY line), each asking for an acknowledgement and waiting for it before the
// next: one acknowledged round trip is one POST of the event and one long-poll answer.
import http from 'node:http'
import https from 'node:https'
import { debuglog } from 'node:util'
import { parseCommandLine, runMain } from '@edgestack/common'
import { io, type Socket } from 'socket.io-client'
import { percentile } from '../stats.js'

// NODE_DEBUG=bench-polling: each failed connect and acknowledgement, with its reason.
const debug = debuglog('bench-polling')

runMain('bench-polling', async () => {
  const { values } = parseCommandLine(process.argv.slice(2), {
    options: {
      url: { type: 'string' },
      clients: { type: 'string' },
      duration: { type: 'string' },
    },
  })
  const url = String(values.url)
  const count = Number(values.clients ?? 200)
  const durationMs = Number(values.duration ?? 1) * 1000
  const rtts: number[] = []
  let errors = 0
  // 127.0.1.1 up: one address a client, 250 a /24 (Linux routes all of 127/8 to loopback).
  const address = (i: number) => `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`
  const sockets: Array<{ socket: Socket; agent: http.Agent }> = []
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const localAddress = address(i)
      const agentOptions = { keepAlive: true, localAddress, rejectUnauthorized: false }
      const agent = url.startsWith('https:') ? new https.Agent(agentOptions) : new http.Agent(agentOptions)
      const socket = io(url, {
        transports: ['polling'],
        agent: agent as unknown as string,
        rejectUnauthorized: false,
        forceNew: true,
        reconnection: false,
        timeout: 20_000,
      } as Parameters<typeof io>[1])
      sockets.push({ socket, agent })
      await new Promise<void>((resolve) => {
        socket.once('connect', () => resolve())
        socket.once('connect_error', (err) => {
          debug('connect_error: %s', err.message)
          errors++
          resolve()
        })
      })
    }),
  )
  const deadline = Date.now() + durationMs
  const t0 = performance.now()
  await Promise.all(
    sockets
      .filter((s) => s.socket.connected)
      .map(async ({ socket }) => {
        while (Date.now() < deadline) {
          const start = performance.now()
          try {
            await socket.timeout(10_000).emitWithAck('ping-rtt')
            rtts.push(performance.now() - start)
          } catch (err) {
            debug('ack: %s', (err as Error).message)
            errors++
            return
          }
        }
      }),
  )
  const seconds = (performance.now() - t0) / 1000
  for (const { socket, agent } of sockets) {
    socket.close()
    agent.destroy()
  }
  process.stdout.write(
    `${JSON.stringify({ rate: rtts.length / seconds, bytesPerSec: 0, p50Ms: percentile(rtts, 50), p99Ms: percentile(rtts, 99), count: rtts.length, errors, non2xx: 0 })}\n`,
  )
})
