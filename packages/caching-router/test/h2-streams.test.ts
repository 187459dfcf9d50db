import assert from 'node:assert/strict'
import type http from 'node:http'
import { after, before, describe, type TestContext, test } from 'node:test'
import { setImmediate as tick } from 'node:timers/promises'
import { acknowledgeSettings, Code, END_HEADERS, END_STREAM, frame, getBlock, literal, RawH2, Type } from './h2-frames.js'
import { h2Vcl, startH2Origin } from './h2-origin.js'
import { startVclRouter, type VclRouter } from './router-vcl-harness.js'
import { type RunningVarnishd, skipWithoutVarnishd, startVarnishd } from './vcl-varnishd.js'

// Stream IDs and the concurrent-stream limit, frames written by hand, ours against varnishd
// 7.1.1 with the same VCL and h2_max_concurrent_streams=2: RFC 9113 §5.1.1 (a stream ID that
// goes backwards is a connection error PROTOCOL_ERROR) and §5.1.2 (a stream over the limit
// may be refused alone), which nghttp2 alone gets otherwise (src/h2/frame-tap.ts, session.ts).

const headers = (stream: number, block: Buffer, flags = END_STREAM | END_HEADERS) => frame(Type.HEADERS, flags, stream, block)
/** A POST whose body is still to come: its stream stays open. */
const post = (path: string) => Buffer.concat([literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', path), literal(':authority', 'test'), literal('content-length', '4')])
const ended = (c: RawH2, stream: number) => c.frames.some((f) => f.stream === stream && (f.flags & END_STREAM) !== 0 && (f.type === Type.DATA || f.type === Type.HEADERS))
const answered = (c: RawH2, stream: number) => c.frames.some((f) => f.stream === stream && f.type === Type.HEADERS)

function report(t: TestContext, who: string, c: RawH2): void {
  t.diagnostic(`${who}: closed=${c.closed} goaway=${JSON.stringify(c.goaway)} frames=${c.frames.map((f) => `${f.type}/${f.stream}`).join(' ')}`)
}

describe('HTTP/2 stream IDs and h2_max_concurrent_streams: caching-router vs varnishd', { skip: skipWithoutVarnishd }, () => {
  let origin: http.Server
  let varnishd: RunningVarnishd
  let router: VclRouter

  before(async () => {
    const o = await startH2Origin()
    origin = o.server
    ;[varnishd, router] = await Promise.all([
      startVarnishd(h2Vcl(o.port), ['-p', 'feature=+http2', '-p', 'h2_max_concurrent_streams=2']),
      startVclRouter(h2Vcl(o.port), 'boot.vcl', { feature: '+http2', h2_max_concurrent_streams: '2' }),
    ])
  })
  after(async () => {
    await Promise.all([varnishd?.stop(), router?.stop()])
    origin?.close()
  })

  test('a stream over h2_max_concurrent_streams, once the client acknowledged it: RST_STREAM REFUSED_STREAM for it alone, as varnishd', async (t) => {
    const over = async (port: number) => {
      const c = await RawH2.connect(port)
      await acknowledgeSettings(c)
      c.write(Buffer.concat([headers(1, post('/pass/1'), END_HEADERS), headers(3, post('/pass/3'), END_HEADERS), headers(5, getBlock('/a'))]))
      await c.until(() => c.rstCodes().length > 0 || c.goaway !== undefined, 10_000)
      // The two open streams go on: their bodies end, their answers come.
      c.write(Buffer.concat([frame(Type.DATA, END_STREAM, 1, Buffer.from('abcd')), frame(Type.DATA, END_STREAM, 3, Buffer.from('abcd'))]))
      await c.until(() => ended(c, 1) && ended(c, 3), 10_000)
      return c
    }
    const ours = await over(router.port)
    const theirs = await over(varnishd.port)
    report(t, 'varnishd', theirs)
    for (const c of [ours, theirs]) {
      assert.equal(c.goaway, undefined)
      const rst = c.frames.filter((f) => f.type === Type.RST_STREAM)
      assert.deepEqual(
        rst.map((f) => [f.stream, f.payload.readUInt32BE(0)]),
        [[5, Code.REFUSED_STREAM]],
      )
      assert.ok(answered(c, 1) && answered(c, 3), 'streams 1 and 3 answered')
      c.destroy()
    }
    // Ours once more: the session still opens streams under the limit.
    const again = await over(router.port)
    again.write(headers(7, getBlock('/a')))
    await again.until(() => ended(again, 7))
    assert.ok(answered(again, 7))
    again.destroy()
  })

  for (const [name, first, second] of [
    ['a stream ID below the highest (3 after 5)', 5, 3],
    ['a closed stream ID used again (1 after 1)', 1, 1],
  ] as const) {
    test(`${name}: GOAWAY PROTOCOL_ERROR naming the highest stream, nothing after it served, as varnishd`, async (t) => {
      const back = async (port: number, byteByByte: boolean) => {
        const c = await RawH2.connect(port)
        await acknowledgeSettings(c)
        c.write(headers(first, getBlock('/a')))
        await c.until(() => ended(c, first))
        const rest = Buffer.concat([headers(second, getBlock('/a')), headers(9, getBlock('/a'))])
        if (!byteByByte) c.write(rest)
        else {
          // Frame headers cut by reads are put together before they are looked at.
          for (const b of rest) {
            c.write(Buffer.from([b]))
            await tick()
          }
        }
        await c.until(() => c.goaway !== undefined || answered(c, 9), 10_000)
        return c
      }
      const theirs = await back(varnishd.port, false)
      report(t, 'varnishd', theirs)
      for (const byteByByte of [false, true]) {
        const ours = await back(router.port, byteByByte)
        assert.deepEqual(ours.goaway, theirs.goaway)
        assert.deepEqual(ours.goaway, { code: Code.PROTOCOL_ERROR, lastStream: first })
        assert.equal(answered(ours, 9), false)
        assert.equal(await ours.untilClosed(10_000), true)
      }
      theirs.destroy()
      if (first > second) {
        // HEADERS below the highest stream on a stream the client has not ended are its
        // trailers (RFC 9113 §8.1): served, no error.
        const c = await RawH2.connect(router.port)
        await acknowledgeSettings(c)
        c.write(Buffer.concat([headers(1, post('/pass/trailers'), END_HEADERS), headers(3, getBlock('/a'))]))
        await c.until(() => ended(c, 3))
        c.write(Buffer.concat([frame(Type.DATA, 0, 1, Buffer.from('abcd')), headers(1, literal('x-trailer', 'yes'))]))
        await c.until(() => ended(c, 1) || c.goaway !== undefined)
        assert.equal(c.goaway, undefined)
        assert.ok(answered(c, 1))
        c.destroy()
      }
    })
  }

})
