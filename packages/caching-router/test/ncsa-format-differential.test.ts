import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { describe, test } from 'node:test'
import { promisify } from 'node:util'
import { sendRaw as send, startOrigin, startRouter, type Started } from './router-harness.js'
import { type RunningVarnishd, skipWithoutVarnishd, startVarnishd } from './vcl-varnishd.js'

// --access-log-format and --access-log-json against varnishncsa -F and -F -j on the same
// requests to varnishd: each specifier we accept writes what varnishncsa writes (escaping,
// absent values, %r's http://host, %q and %U, %u from Basic credentials, handling), the parts
// that differ by nature masked (%t's second, %D, %T, the vxid).

const run = promisify(execFile)

const REQUESTS = [
  'GET /plain?a=1&b=%22 HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\nConnection: close\r\n\r\n',
  'GET /plain?a=1&b=%22 HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\nConnection: close\r\n\r\n',
  'GET /a%22b HTTP/1.1\r\nHost: x\r\nUser-Agent: q"uo\\te\ttab\xffhi\r\nReferer: r\xc3\xa9f\r\nConnection: close\r\n\r\n',
  'POST /form HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
  'GET /nohost HTTP/1.0\r\n\r\n',
]

const FORMAT = '%h %l %u %t "%r" %s %b %H %m %U|%q| "%{Referer}i" "%{User-agent}i" %{Varnish:handling}x %{Varnish:hitmiss}x %{Varnish:side}x %D %T %{Varnish:vxid}x'
const JSON_FORMAT = '{"h":"%h","l":"%l","u":"%u","r":"%r","s":%s,"b":"%b","q":"%q","U":"%U","ref":"%{Referer}i","ua":"%{User-agent}i","x":"%{Varnish:handling}x"}'

/** %t's second, %D, %T and the vxid differ between any two runs; their shape must not. */
const masked = (line: string) =>
  line.replace(/\[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]/, '[T]').replace(/ \d+ \d+ \d+$/, ' <D> <T> <vxid>')

async function compare(format: string, json: boolean): Promise<void> {
  const closers: (() => Promise<void>)[] = []
  const t = { after: (fn: () => Promise<void>) => closers.push(fn) } as unknown as import('node:test').TestContext
  let theirs: RunningVarnishd | undefined
  try {
    const origin = await startOrigin(t, (_req, res) => {
      res.setHeader('Content-Length', 5)
      res.setHeader('Cache-Control', 'max-age=60')
      res.end('hello')
    })
    const ours: Started = await startRouter(t, origin.address, { accessFormat: { format, json } })
    theirs = await startVarnishd(`vcl 4.1;\nbackend o { .host = "127.0.0.1"; .port = "${origin.address.port}"; }\n`)
    for (const r of REQUESTS) {
      await send(ours.address.port, r)
      await send(theirs.port, r)
    }
    for (let i = 0; i < 500 && ours.lines.length < REQUESTS.length; i++) await new Promise((r) => setTimeout(r, 20))
    const { stdout } = await run('varnishncsa', ['-d', '-n', theirs.workdir, '-F', format, ...(json ? ['-j'] : [])], { encoding: 'latin1' })
    const varnishLines = stdout.split('\n').filter((l) => l !== '')
    assert.equal(varnishLines.length, REQUESTS.length, stdout)
    assert.deepEqual(ours.lines.map(masked), varnishLines.map(masked))
    if (json) for (const l of ours.lines) JSON.parse(Buffer.from(l, 'latin1').toString('utf8').replace(/\uFFFD/g, '?'))
  } finally {
    await theirs?.stop()
    for (const close of closers.reverse()) await close()
  }
}

describe('access-log formats: caching-router vs varnishncsa -F / -j', { skip: skipWithoutVarnishd }, () => {
  test('-F with every specifier we accept', () => compare(FORMAT, false))
  test('-F -j: a JSON line', () => compare(JSON_FORMAT, true))
})
