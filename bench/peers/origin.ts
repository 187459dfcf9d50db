#!/usr/bin/env node
// The fast origin behind the pass, cache and TLS scenarios: a bare `net` HTTP/1.1 responder with
// ready-made answers, so the layer in front is what gets measured. It is measured alone too, as
// the ceiling of any layer put in front of it.
import net from 'node:net'
import zlib from 'node:zlib'
import { parseCommandLine, runMain } from '@edgestack/common'
import { listenOn } from './listen.js'

const BODY = Buffer.alloc(1024, 'a')

function answer(cacheControl: string, body: Buffer): Buffer {
  const head = `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nCache-Control: ${cacheControl}\r\n\r\n`
  return Buffer.concat([Buffer.from(head, 'latin1'), body])
}

// Paths with "pass" in them are uncacheable (varnishd's builtin VCL makes them hit-for-miss);
// everything else may be cached for an hour.
const CACHEABLE = answer('max-age=3600', BODY)
// Scenario 12: a page of three ESI fragments (256 bytes each); 13-14: a 1 KiB body stored gzip'ed.
const FRAGMENT = answer('max-age=3600', Buffer.alloc(256, 'f'))
const ESI_PAGE = withFields(
  answer('max-age=3600', Buffer.from('<html><esi:include src="/esi-frag-1"/><esi:include src="/esi-frag-2"/><esi:include src="/esi-frag-3"/></html>')),
  'X-Esi: 1\r\n',
)
const GZIP = withFields(answer('max-age=3600', zlib.gzipSync(BODY)), 'Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n')

/** `answer` with more header fields before the blank line. */
function withFields(wire: Buffer, fields: string): Buffer {
  const end = wire.indexOf('\r\n\r\n')
  return Buffer.concat([wire.subarray(0, end + 2), Buffer.from(fields, 'latin1'), wire.subarray(end + 2)])
}
const UNCACHEABLE = answer('no-store', BODY)
/** Longest request head we accept; the bench's clients send a few hundred bytes. */
const MAX_HEAD = 16 * 1024
const CLOSE = /\r\nconnection:[ \t]*close/i

runMain('bench-origin', async () => {
  const { values } = parseCommandLine(process.argv.slice(2), { options: { port: { type: 'string' } } })
  let requests = 0
  const server = net.createServer((socket) => {
    let pending = ''
    socket.on('error', () => socket.destroy())
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1')
      for (;;) {
        const end = pending.indexOf('\r\n\r\n')
        if (end === -1) {
          if (pending.length > MAX_HEAD) socket.destroy()
          return
        }
        const head = pending.slice(0, end)
        pending = pending.slice(end + 4)
        const lineEnd = head.indexOf('\r\n')
        const requestLine = lineEnd === -1 ? head : head.slice(0, lineEnd)
        const path = requestLine.split(' ')[1] ?? '/'
        if (path === '/__count') {
          // How many requests reached the origin: tells a cache hit from a pass.
          const body = Buffer.from(String(requests))
          socket.write(answer('no-store', body))
          continue
        }
        requests++
        socket.write(
          path.includes('pass') ? UNCACHEABLE
          : path.startsWith('/esi-frag') ? FRAGMENT
          : path.startsWith('/esi-page') ? ESI_PAGE
          : path.startsWith('/gz-') ? GZIP
          : CACHEABLE,
        )
        if (CLOSE.test(head)) {
          socket.end()
          return
        }
      }
    })
  })
  await listenOn(server, values.port)
})
