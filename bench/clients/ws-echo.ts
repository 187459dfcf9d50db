#!/usr/bin/env node
// Scenario 8's client: websocket connections over wss through the whole chain, each sending a
// message and waiting for its echo before the next; round trips timed one by one.
import { parseCommandLine, runMain } from '@edgestack/common'
import WebSocket from 'ws'
import { percentile } from '../stats.js'

runMain('bench-ws-echo', async () => {
  const { values } = parseCommandLine(process.argv.slice(2), {
    options: {
      url: { type: 'string' },
      connections: { type: 'string' },
      duration: { type: 'string' },
      max: { type: 'string' },
      size: { type: 'string' },
    },
  })
  const url = String(values.url)
  const payload = Buffer.alloc(Number(values.size ?? 64), 'x')
  const durationMs = Number(values.duration ?? 1) * 1000
  const max = Number(values.max ?? 1_000_000)
  const rtts: number[] = []
  let errors = 0
  let wrong = 0
  let sent = 0
  let deadline = 0

  const connect = () =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, { rejectUnauthorized: false, handshakeTimeout: 10_000 })
      ws.once('open', () => resolve(ws))
      ws.once('error', reject)
    })
  const sockets = await Promise.all(
    Array.from({ length: Number(values.connections ?? 16) }, () =>
      connect().catch(() => {
        errors++
        return undefined
      }),
    ),
  )
  const loop = (ws: WebSocket) =>
    new Promise<void>((resolve) => {
      let t0 = 0
      const next = () => {
        if (Date.now() >= deadline || sent >= max) {
          ws.close()
          resolve()
          return
        }
        sent++
        t0 = performance.now()
        ws.send(payload)
      }
      ws.on('message', (data: Buffer) => {
        if (data.length === payload.length) rtts.push(performance.now() - t0)
        else wrong++
        next()
      })
      ws.on('error', () => {
        errors++
        resolve()
      })
      ws.on('close', () => resolve())
      next()
    })
  const t0 = performance.now()
  deadline = Date.now() + durationMs
  await Promise.all(sockets.filter((s) => s !== undefined).map(loop))
  const seconds = (performance.now() - t0) / 1000
  process.stdout.write(
    `${JSON.stringify({
      rate: rtts.length / seconds,
      bytesPerSec: 0,
      p50Ms: percentile(rtts, 50),
      p99Ms: percentile(rtts, 99),
      count: rtts.length,
      errors,
      non2xx: wrong,
    })}\n`,
  )
})
