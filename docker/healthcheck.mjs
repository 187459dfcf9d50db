#!/usr/bin/env node
// Container health check for images without curl: one GET to the URL, healthy (exit 0) on a
// 2xx or 3xx answer, unhealthy (exit 1) on any other status, a refused connection or no answer
// in 4 s. Each service is checked on a URL it must serve (a 404 for /app.css is a wrong root).
// For https the certificate is not verified: the check is whether the listener answers, not
// whether the container trusts its own development CA.
//
// Usage: node docker/healthcheck.mjs http://127.0.0.1:3000/healthz
import http from 'node:http'
import https from 'node:https'

const target = process.argv[2]
if (!target) {
  process.stderr.write('usage: healthcheck URL\n')
  process.exit(2)
}
const url = new URL(target)
const client = url.protocol === 'https:' ? https : http
const req = client.get(url, { agent: false, rejectUnauthorized: false, timeout: 4000 }, (res) => {
  res.resume()
  const healthy = (res.statusCode ?? 500) < 400
  process.stdout.write(`${target}: ${res.statusCode}\n`)
  process.exitCode = healthy ? 0 : 1
})
req.on('timeout', () => req.destroy(new Error('no answer in 4 s')))
req.on('error', (err) => {
  process.stderr.write(`${target}: ${err.message}\n`)
  process.exitCode = 1
})
