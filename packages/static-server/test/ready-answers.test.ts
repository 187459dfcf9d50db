import assert from 'node:assert/strict'
import { stat, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { HostPort } from '@edgestack/common'
import type { StaticServer } from '../src/index.js'
import { makeFixtures, parseResponse, type RawResponse, rawRequest, startOurs } from './helpers.js'

/** Splits pipelined answers on one connection (Content-Length framing; HEAD answers have no body). */
function splitAnswers(raw: Buffer, heads: boolean[]): RawResponse[] {
  const out: RawResponse[] = []
  let at = 0
  for (const head of heads) {
    const end = raw.indexOf('\r\n\r\n', at)
    assert.ok(end >= 0, `answer ${out.length + 1} is missing`)
    const m = /\r\ncontent-length: (\d+)/i.exec(raw.subarray(at, end).toString('latin1'))
    const next = end + 4 + (head ? 0 : Number(m?.[1] ?? 0))
    out.push(parseResponse(raw.subarray(at, next)))
    at = next
  }
  assert.equal(at, raw.length, 'nothing after the last answer')
  return out
}

/** Several requests on one keep-alive connection, the last one closing it. */
async function pipelined(addr: HostPort, reqs: { path: string; method?: string; fields?: string }[]): Promise<RawResponse[]> {
  let bytes = ''
  reqs.forEach((r, i) => {
    const close = i === reqs.length - 1 ? 'Connection: close\r\n' : ''
    bytes += `${r.method ?? 'GET'} ${r.path} HTTP/1.1\r\nHost: localhost\r\n${r.fields ?? ''}${close}\r\n`
  })
  const raw = await rawRequest(addr, bytes)
  return splitAnswers(
    raw,
    reqs.map((r) => r.method === 'HEAD'),
  )
}

const withoutDate = (r: RawResponse) => r.raw.toString('latin1').replace(/\r\nDate: [^\r]*/, '')

// A plain GET of a small cached file is answered from bytes formatted for an earlier request
// (static-file.ts, sendReady). These prove such an answer is what the general path writes, that
// an edited file is never answered from it, and that validators and ranges still take effect.
describe('ready answers for small files', () => {
  let dir: string
  let ours: StaticServer
  let addr: HostPort

  before(async () => {
    dir = await makeFixtures()
    const conf = `
events {}
http {
    include ${dir}/mime.types;
    access_log off;
    server {
        listen 127.0.0.1:0;
        root ${dir}/root;
        location /hdr/ { alias ${dir}/root/; add_header X-Static yes; expires max; }
    }
}`
    await writeFile(join(dir, 'ready.conf'), conf)
    const o = await startOurs(dir, join(dir, 'ready.conf'))
    ours = o.server
    addr = o.addr[0] as HostPort
  })

  after(async () => {
    await ours?.close({ drainTimeoutMs: 100 })
  })

  test('a repeated GET is byte for byte the first answer (Date aside), keep-alive and close alike', async () => {
    for (const path of ['/a.txt', '/hdr/a.txt', '/dir/x.css']) {
      const rs = await pipelined(addr, [{ path }, { path }, { path }])
      const [first, second, last] = rs as [RawResponse, RawResponse, RawResponse]
      assert.equal(first.status, 200)
      assert.equal(withoutDate(second), withoutDate(first))
      assert.equal(last.headers.get('connection'), 'close')
      assert.equal(withoutDate(last).replace('\r\nConnection: close', '\r\nConnection: keep-alive'), withoutDate(first))
    }
    const [h] = await pipelined(addr, [{ path: '/hdr/a.txt' }])
    assert.equal(h?.headers.get('x-static'), 'yes')
    assert.equal(h?.headers.get('cache-control'), 'max-age=315360000')
  })

  test('an HTTP/1.0 keep-alive client gets its Connection field from the ready path too', async () => {
    const req = 'GET /a.txt HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n'
    const raw = await rawRequest(addr, `${req}${req}GET /a.txt HTTP/1.0\r\nHost: localhost\r\n\r\n`)
    const [a, b, c] = splitAnswers(raw, [false, false, false]) as [RawResponse, RawResponse, RawResponse]
    assert.equal(a.headers.get('connection'), 'keep-alive')
    assert.equal(withoutDate(b), withoutDate(a))
    assert.equal(c.headers.get('connection'), 'close')
  })

  test('a file edited after its answer was made ready is served new (same size, new mtime)', async () => {
    const f = join(dir, 'root/edit.txt')
    await writeFile(f, 'AAAA\n')
    await utimes(f, new Date('2021-01-01T00:00:00Z'), new Date('2021-01-01T00:00:00Z'))
    const before = await pipelined(addr, [{ path: '/edit.txt' }, { path: '/edit.txt' }, { path: '/edit.txt' }])
    for (const r of before) assert.equal(r.body.toString(), 'AAAA\n')
    await writeFile(f, 'BBBB\n')
    const [r] = await pipelined(addr, [{ path: '/edit.txt' }])
    assert.equal(r?.body.toString(), 'BBBB\n')
    const st = await stat(f)
    assert.equal(r?.headers.get('etag'), `"${Math.floor(st.mtimeMs / 1000).toString(16)}-${st.size.toString(16)}"`)
    assert.equal(r?.headers.get('last-modified'), new Date(Math.floor(st.mtimeMs / 1000) * 1000).toUTCString())
  })

  test('HEAD, If-None-Match, If-Modified-Since and Range still answer as before once a file is ready', async () => {
    const [full, , head, inm, ims, range] = await pipelined(addr, [
      { path: '/a.txt' },
      { path: '/a.txt' },
      { path: '/a.txt', method: 'HEAD' },
      { path: '/a.txt', fields: 'If-None-Match: "65937d25-6c"\r\n' },
      { path: '/a.txt', fields: 'If-Modified-Since: Tue, 02 Jan 2024 03:04:05 GMT\r\n' },
      { path: '/a.txt', fields: 'Range: bytes=0-4\r\n' },
    ]) as RawResponse[]
    assert.equal(full?.headers.get('etag'), '"65937d25-6c"')
    assert.equal(head?.status, 200)
    assert.equal(head?.body.length, 0)
    assert.equal(head?.headers.get('content-length'), '108')
    assert.equal(inm?.status, 304)
    assert.equal(inm?.body.length, 0)
    assert.equal(ims?.status, 304)
    assert.equal(range?.status, 206)
    assert.equal(range?.headers.get('content-range'), 'bytes 0-4/108')
    assert.equal(range?.body.toString(), 'hello')
  })
})
