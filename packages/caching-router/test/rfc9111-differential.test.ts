import assert from 'node:assert/strict'
import net, { type AddressInfo } from 'node:net'
import { describe, test } from 'node:test'
import { get, startRouter } from './router-harness.js'
import { startVarnishd, varnishInstalled } from './vcl-varnishd.js'

// The RFC 9111 points where varnishd 7.1 behaves as the router does, against one raw origin:
// for each path, the status of two GETs and whether the second was a hit. (Where varnishd
// differs, the README's "Where we differ" says how; router-rfc9111.test.ts covers those.)

const answers: Record<string, string> = {
  '/zero-point': 'HTTP/1.1 200 OK\r\nCache-Control: max-age=0.0\r\n',
  '/negative': 'HTTP/1.1 200 OK\r\nCache-Control: max-age=-1\r\n',
  '/teapot': 'HTTP/1.1 418 I am a teapot\r\n',
  '/max-age': 'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n',
  // Not a Dictionary: ignored, Cache-Control decides (varnishd never reads the field).
  '/cdn-invalid': 'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nCDN-Cache-Control: no-store,\r\n',
}

async function rawOrigin(): Promise<{ port: number; close(): void }> {
  const counts = new Map<string, number>()
  const server = net.createServer((s) => {
    s.on('error', () => {})
    let buf = ''
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1')
      for (let end = buf.indexOf('\r\n\r\n'); end !== -1; end = buf.indexOf('\r\n\r\n')) {
        const path = buf.slice(buf.indexOf(' ') + 1, buf.indexOf(' ', buf.indexOf(' ') + 1))
        buf = buf.slice(end + 4)
        const n = (counts.get(path) ?? 0) + 1
        counts.set(path, n)
        if (path === '/flood') {
          s.write('HTTP/1.1 102 Processing\r\n\r\n'.repeat(200))
          s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
          continue
        }
        const body = `${path} ${n}`
        s.write(`${answers[path] ?? 'HTTP/1.1 404 Not Found\r\n'}Content-Length: ${body.length}\r\n\r\n${body}`)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as AddressInfo).port, close: () => server.close() }
}

async function outcomes(base: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const path of [...Object.keys(answers), '/flood']) {
    const a = await get(`${base}${path}`)
    const b = await get(`${base}${path}`)
    out[path] = `${a.status} ${b.status} ${b.status < 500 && a.body === b.body ? 'hit' : 'fetched'}`
  }
  return out
}

describe('RFC 9111 points: caching-router vs varnishd', { skip: varnishInstalled ? false : 'varnishd/varnishadm not installed' }, () => {
  test('invalid max-age, a status without freshness, an invalid CDN-Cache-Control, a 1xx flood', async (t) => {
    const ours = await rawOrigin()
    const theirs = await rawOrigin()
    t.after(() => {
      ours.close()
      theirs.close()
    })
    const vcl = (port: number) => `vcl 4.1;\nbackend default { .host = "127.0.0.1"; .port = "${port}"; }\n`
    const varnishd = await startVarnishd(vcl(theirs.port))
    t.after(() => varnishd.stop())
    const router = await startRouter(t, { host: '127.0.0.1', port: ours.port }, { vcl: vcl(ours.port) })
    const expected = await outcomes(`http://127.0.0.1:${varnishd.port}`)
    assert.deepEqual(await outcomes(router.url), expected)
    // The matrix reaches both outcomes, and the flood fails the fetch.
    assert.equal(expected['/max-age'], '200 200 hit')
    assert.equal(expected['/zero-point'], '200 200 fetched')
    assert.equal(expected['/flood'], '503 503 fetched')
  })
})
