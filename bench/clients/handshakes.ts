#!/usr/bin/env node
// Scenario 6's client: new TLS connections, one `Connection: close` request each, never resuming
// a session. wrk resumes every other session after SSL_clear, which would halve the cost being
// measured; Node's client only resumes when handed a session, and we never hand it one.
import tls from 'node:tls'
import { parseCommandLine, runMain } from '@edgestack/common'
import { percentile } from '../stats.js'

runMain('bench-handshakes', async () => {
  const { values } = parseCommandLine(process.argv.slice(2), {
    options: {
      port: { type: 'string' },
      concurrency: { type: 'string' },
      duration: { type: 'string' },
      max: { type: 'string' },
    },
  })
  const port = Number(values.port)
  const deadline = Date.now() + Number(values.duration ?? 1) * 1000
  const max = Number(values.max ?? 1_000_000)
  const latencies: number[] = []
  let errors = 0
  let non2xx = 0
  let started = 0
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now()
      let head = ''
      const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost' })
      socket.setTimeout(10_000, () => socket.destroy(new Error('timeout')))
      socket.on('secureConnect', () => socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'))
      socket.on('data', (c: Buffer) => {
        if (head.length < 16) head += c.toString('latin1')
      })
      socket.on('error', () => {
        errors++
        resolve()
      })
      socket.on('close', (hadError) => {
        if (hadError) return
        if (/^HTTP\/1\.[01] 2/.test(head)) latencies.push(performance.now() - t0)
        else non2xx++
        resolve()
      })
    })
  const t0 = performance.now()
  const worker = async () => {
    while (Date.now() < deadline && started < max) {
      started++
      await one()
    }
  }
  await Promise.all(Array.from({ length: Number(values.concurrency ?? 8) }, worker))
  const seconds = (performance.now() - t0) / 1000
  process.stdout.write(
    `${JSON.stringify({
      rate: latencies.length / seconds,
      bytesPerSec: 0,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      count: latencies.length,
      errors,
      non2xx,
    })}\n`,
  )
})
