#!/usr/bin/env node
// Scenario 9's client: opens N connections, makes one keep-alive request on each, and holds
// them idle. It prints `{"open":..}` once all are attempted and holds them until stdin closes,
// or at most --hold seconds, so it can never outlive the harness for long.
import net from 'node:net'
import tls from 'node:tls'
import { parseCommandLine, runMain } from '@edgestack/common'

runMain('bench-idle', async () => {
  const { values } = parseCommandLine(process.argv.slice(2), {
    options: {
      port: { type: 'string' },
      count: { type: 'string' },
      tls: { type: 'boolean' },
      path: { type: 'string' },
      concurrency: { type: 'string' },
      timeout: { type: 'string' },
      hold: { type: 'string' },
    },
  })
  const port = Number(values.port)
  const count = Number(values.count ?? 100)
  const deadline = Date.now() + Number(values.timeout ?? 60) * 1000
  const request = `GET ${values.path ?? '/'} HTTP/1.1\r\nHost: localhost\r\n\r\n`
  const held = new Set<net.Socket>()
  let failed = 0
  let attempted = 0

  const one = () =>
    new Promise<void>((resolve) => {
      const socket = values.tls
        ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost' })
        : net.connect(port, '127.0.0.1')
      let answered = false
      let head = ''
      const fail = () => {
        if (!answered) failed++
        answered = true
        held.delete(socket)
        resolve()
      }
      socket.setTimeout(15_000, () => socket.destroy())
      socket.on(values.tls ? 'secureConnect' : 'connect', () => socket.write(request))
      socket.on('data', (c: Buffer) => {
        if (answered) return
        head += c.toString('latin1')
        if (head.includes('\r\n\r\n')) {
          answered = true
          socket.setTimeout(0)
          if (/^HTTP\/1\.1 2/.test(head)) held.add(socket)
          else {
            failed++
            socket.destroy()
          }
          resolve()
        }
      })
      socket.on('error', fail)
      socket.on('close', fail)
    })
  const worker = async () => {
    while (attempted < count && Date.now() < deadline) {
      attempted++
      await one()
    }
  }
  await Promise.all(Array.from({ length: Number(values.concurrency ?? 100) }, worker))
  process.stdout.write(`${JSON.stringify({ open: held.size, failed, attempted })}\n`)
  const release = () => {
    for (const s of held) s.destroy()
    process.stdin.destroy()
    clearTimeout(timer)
  }
  const timer = setTimeout(release, Number(values.hold ?? 120) * 1000)
  process.stdin.on('end', release)
  process.stdin.on('close', release)
  process.stdin.resume()
})
