import http from 'node:http'
import type { AddressInfo } from 'node:net'

// The origin and VCL of the HTTP/2 tests: the same file for caching-router and varnishd.

export const BIG = Buffer.alloc(1024 * 1024, 'x')

export const h2Vcl = (port: number) => `vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "${port}"; }
sub vcl_recv {
    if (req.url ~ "^/pass") { return (pass); }
    if (req.url ~ "^/pipe") { return (pipe); }
}
`

export async function startH2Origin(): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string
    if (req.method === 'POST') {
      let n = 0
      req.on('data', (c: Buffer) => {
        n += c.length
      })
      req.on('end', () => {
        const text = `got ${n}`
        res.writeHead(200, { 'Content-Length': text.length })
        res.end(text)
      })
      return
    }
    req.resume()
    if (path === '/big') {
      res.writeHead(200, { 'Cache-Control': 'max-age=60', 'Content-Length': BIG.length })
      res.end(BIG)
      return
    }
    if (path === '/etag') {
      res.writeHead(200, { 'Cache-Control': 'max-age=60', ETag: '"v1"', 'Content-Length': 7 })
      res.end('etagged')
      return
    }
    // With Content-Length: varnishd states a length over HTTP/2 when it knows the whole body
    // at delivery, which for a chunked origin depends on its reads (README, "HTTP/2").
    const text = `hello ${req.url} via ${req.httpVersion}`
    res.writeHead(200, { 'Cache-Control': 'max-age=60', 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(text) })
    res.end(text)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as AddressInfo).port }
}
