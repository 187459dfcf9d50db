import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { sendRaw as send, startOrigin, startRouter, type Started } from './router-harness.js'
import { type RunningVarnishd, skipWithoutVarnishd, startVarnishd } from './vcl-varnishd.js'

// The router's access line against varnishncsa's on the same requests: `"`, `\`, tab and
// non-ASCII bytes in the URL, Referer and User-Agent escaped the same way (VSB_QUOTE_ESCHEX),
// never a raw control byte in a line.

const run = promisify(execFile)

const REQUESTS = [
  'GET /plain HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\nConnection: close\r\n\r\n',
  'GET /a%22b HTTP/1.1\r\nHost: x\r\nUser-Agent: q"uo\\te\ttab\xffhi\r\nReferer: r\xe9f\r\nConnection: close\r\n\r\n',
  'GET /x\xff\xe9y HTTP/1.1\r\nHost: x\r\nUser-Agent: "\\" forged "-"\r\nConnection: close\r\n\r\n',
  'GET /c1 HTTP/1.1\r\nHost: x\r\nReferer: \x80\x9f\xa0\r\nConnection: close\r\n\r\n',
]

/**
 * The part of a line both write the same way: from the request line on, without the harness's
 * `%{Varnish:handling}x` and the size of a 400 (varnishncsa writes 0 for varnishd's, we `-`).
 */
const tail = (line: string) =>
  line
    .slice(line.indexOf('"'))
    .replace(/ (hit|miss|pass|pipe|synth)$/, '')
    .replace(/" 400 (-|0) "/, '" 400 <size> "')

describe('access-log escaping: caching-router vs varnishncsa', { skip: skipWithoutVarnishd }, () => {
  let ours: Started
  let theirs: RunningVarnishd
  const closers: (() => Promise<void>)[] = []
  before(async () => {
    const t = { after: (fn: () => Promise<void>) => closers.push(fn) } as unknown as import('node:test').TestContext
    const origin = await startOrigin(t, (_req, res) => {
      res.setHeader('Content-Length', 5)
      res.end('hello')
    })
    ours = await startRouter(t, origin.address)
    theirs = await startVarnishd(`vcl 4.1;\nbackend o { .host = "127.0.0.1"; .port = "${origin.address.port}"; }\n`)
  })
  after(async () => {
    await theirs?.stop()
    for (const close of closers.reverse()) await close()
  })

  test('the same lines, escaped the same way', async () => {
    for (const r of REQUESTS) {
      await send(ours.address.port, r)
      await send(theirs.port, r)
    }
    for (let i = 0; i < 500 && ours.lines.length < REQUESTS.length; i++) await new Promise((r) => setTimeout(r, 20))
    const { stdout } = await run('varnishncsa', ['-d', '-n', theirs.workdir], { encoding: 'latin1' })
    const varnishLines = stdout.split('\n').filter((l) => l !== '')
    assert.equal(varnishLines.length, REQUESTS.length, stdout)
    assert.deepEqual(ours.lines.map(tail), varnishLines.map(tail))
    for (const line of ours.lines) assert.doesNotMatch(line, /[\x00-\x1f\x7f-\xff]/)
  })
})
