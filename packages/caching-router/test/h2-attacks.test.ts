import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, type TestContext, test } from 'node:test'
import { setImmediate as tick } from 'node:timers/promises'
import { h2Vcl, startH2Origin } from './h2-origin.js'
import { Code, END_HEADERS, END_STREAM, frame, getBlock, indexed, literal, literalIndexed, RawH2, rstStream, settings, Type } from './h2-frames.js'
import { startVclRouter, type VclRouter } from './router-vcl-harness.js'
import { type RunningVarnishd, skipWithoutVarnishd, startVarnishd } from './vcl-varnishd.js'

// The HTTP/2 attack classes, frames written by hand over a raw socket, against ours and
// against varnishd 7.1.1 (+http2, the same VCL and idle_send_timeout). Ours must end each in
// GOAWAY or RST_STREAM with the connection closed where the attack goes on, and another
// client is answered meanwhile; what varnishd does is reported, and asserted where it
// answers the same way (README, "HTTP/2", for where 7.1.1 does not).

const headers = (stream: number, block: Buffer, flags = END_STREAM | END_HEADERS) => frame(Type.HEADERS, flags, stream, block)

/** Another client meanwhile: an HTTP/1.1 GET that must be answered. */
function otherClient(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/other', agent: false }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      })
      .on('error', reject)
  })
}

function report(t: TestContext, who: string, c: RawH2): void {
  t.diagnostic(`${who}: closed=${c.closed} goaway=${JSON.stringify(c.goaway)} rst=${c.rstCodes().length} (${[...new Set(c.rstCodes())].join(',')})`)
}

describe('HTTP/2 attack battery: caching-router vs varnishd', { skip: skipWithoutVarnishd }, () => {
  let origin: http.Server
  let varnishd: RunningVarnishd
  let router: VclRouter

  before(async () => {
    const o = await startH2Origin()
    origin = o.server
    const params = { feature: '+http2', idle_send_timeout: '2' }
    ;[varnishd, router] = await Promise.all([
      startVarnishd(h2Vcl(o.port), ['-p', 'feature=+http2', '-p', 'idle_send_timeout=2']),
      startVclRouter(h2Vcl(o.port), 'boot.vcl', params),
    ])
  })
  after(async () => {
    await Promise.all([varnishd?.stop(), router?.stop()])
    origin?.close()
  })

  const rapidReset = async (port: number) => {
    const c = await RawH2.connect(port)
    for (let i = 0; i < 500 && !c.closed && c.goaway === undefined; i++) {
      c.write(headers(2 * i + 1, getBlock('/a')))
      c.write(rstStream(2 * i + 1, Code.CANCEL))
      if (i % 20 === 19) await tick()
    }
    await c.untilClosed(10_000)
    return c
  }

  test('rapid reset (CVE-2023-44487): GOAWAY ENHANCE_YOUR_CALM past h2_rapid_reset_limit', async (t) => {
    const [ours, status] = await Promise.all([rapidReset(router.port), otherClient(router.port)])
    assert.equal(status, 200)
    assert.equal(ours.goaway?.code, Code.ENHANCE_YOUR_CALM)
    assert.equal(ours.closed, true)
    // The 101st rapid reset is one too many (the budget starts at the limit, 100, and refills
    // slowly); the streams nghttp2 read in the same batch before the reset was counted may
    // follow it, and under load one read may hold nearly all of them, so the upper bound is
    // only the last stream sent.
    const last = ours.goaway?.lastStream ?? 0
    assert.ok(last >= 2 * 101 - 1 && last <= 2 * 500 - 1, `last stream ${last}`)
    const theirs = await rapidReset(varnishd.port)
    report(t, 'varnishd 7.1.1 (no h2_rapid_reset_limit before 7.4.2)', theirs)
    theirs.destroy()
  })

  test('h2_rapid_reset_limit=0 turns the limit off, as in varnishd', async () => {
    router.router.params.set('h2_rapid_reset_limit', '0')
    try {
      const c = await RawH2.connect(router.port)
      for (let i = 0; i < 300; i++) {
        c.write(headers(2 * i + 1, getBlock('/a')))
        c.write(rstStream(2 * i + 1, Code.CANCEL))
      }
      // A last stream, not reset, is answered: the session outlived 300 rapid resets.
      c.write(headers(601, getBlock('/a')))
      await c.until(() => c.frames.some((f) => f.type === Type.HEADERS && f.stream === 601), 10_000)
      assert.equal(c.goaway, undefined)
      assert.ok(c.frames.some((f) => f.type === Type.HEADERS && f.stream === 601))
      c.destroy()
    } finally {
      router.router.params.reset('h2_rapid_reset_limit')
    }
  })

  const continuationFlood = async (port: number) => {
    const c = await RawH2.connect(port)
    c.write(headers(1, getBlock('/a'), 0))
    const block = Buffer.concat(Array.from({ length: 50 }, (_, i) => literal(`x-flood-${i}`, 'v'.repeat(20))))
    let sent = 0
    for (; sent < 2000 && !c.closed && c.goaway === undefined; sent++) {
      c.write(frame(Type.CONTINUATION, 0, 1, block))
      if (sent % 5 === 4) await tick()
    }
    await c.untilClosed(5000)
    return { c, sent }
  }

  test('CONTINUATION flood (CVE-2024-27316 class): GOAWAY and close long before the flood ends', async (t) => {
    const [{ c: ours, sent }, status] = await Promise.all([continuationFlood(router.port), otherClient(router.port)])
    assert.equal(status, 200)
    assert.equal(ours.closed, true)
    assert.ok(ours.goaway !== undefined || ours.rstCodes().includes(Code.ENHANCE_YOUR_CALM), 'GOAWAY or RST_STREAM')
    assert.ok(sent < 2000, `the client sent all ${sent} frames`)
    const theirs = await continuationFlood(varnishd.port)
    report(t, `varnishd (took ${theirs.sent} CONTINUATION frames)`, theirs.c)
    theirs.c.destroy()
  })

  for (const [name, one] of [
    ['SETTINGS', settings([[4, 65535]])],
    ['PING', frame(Type.PING, 0, 0, Buffer.alloc(8))],
  ] as const) {
    test(`${name} flood: GOAWAY once the acknowledgements owed pile up, and close`, async (t) => {
      const flood = async (port: number) => {
        const c = await RawH2.connect(port)
        c.write(Buffer.concat(Array.from({ length: 20_000 }, () => one)))
        await c.untilClosed(10_000)
        return c
      }
      const [ours, status] = await Promise.all([flood(router.port), otherClient(router.port)])
      assert.equal(status, 200)
      assert.equal(ours.closed, true)
      assert.notEqual(ours.goaway, undefined)
      // Far fewer acknowledgements than frames: the flood was cut, not answered in full.
      assert.ok(ours.frames.length < 20_000, `${ours.frames.length} frames back`)
      ours.destroy()
      const theirs = await flood(varnishd.port)
      report(t, `varnishd (${theirs.frames.length} frames back)`, theirs)
      theirs.destroy()
    })
  }

  test('HPACK bomb (a header list over the limits by dynamic-table references): RST_STREAM ENHANCE_YOUR_CALM, as varnishd', async () => {
    const bomb = async (port: number) => {
      const c = await RawH2.connect(port)
      // One 4000-byte field enters the dynamic table, then 2000 one-byte references: 8 MB decoded.
      const block = Buffer.concat([getBlock('/a'), literalIndexed('x-bomb', 'b'.repeat(4000)), ...Array.from({ length: 2000 }, () => indexed(62))])
      c.write(headers(1, block))
      await c.until(() => c.rstCodes().length > 0 || c.goaway !== undefined, 10_000)
      return c
    }
    const [ours, status] = await Promise.all([bomb(router.port), otherClient(router.port)])
    const theirs = await bomb(varnishd.port)
    assert.equal(status, 200)
    assert.deepEqual(ours.rstCodes(), [Code.ENHANCE_YOUR_CALM])
    assert.deepEqual(ours.rstCodes(), theirs.rstCodes())
    // The session goes on: a next stream is answered.
    ours.write(headers(3, getBlock('/a')))
    await ours.until(() => ours.frames.some((f) => f.type === Type.HEADERS && f.stream === 3))
    assert.ok(ours.frames.some((f) => f.type === Type.HEADERS && f.stream === 3))
    ours.destroy()
    theirs.destroy()
  })

  test('a window that never opens (slow read): the session is closed after idle_send_timeout, by both', async () => {
    // The object is cached first, so what waits is the stored body, never a copy of it.
    await otherClient(router.port)
    const slow = async (port: number) => {
      const c = await RawH2.connect(port, [Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), settings([[4, 0]])])
      c.write(headers(1, getBlock('/big')))
      await c.untilClosed(20_000)
      return c
    }
    const [ours, status] = await Promise.all([slow(router.port), otherClient(router.port)])
    assert.equal(status, 200)
    assert.equal(ours.closed, true)
    assert.equal(ours.frames.filter((f) => f.type === Type.DATA).length, 0)
    const theirs = await slow(varnishd.port)
    assert.equal(theirs.closed, true)
  })

  test('DATA on a stream the client half-closed: STREAM_CLOSED, as varnishd', async (t) => {
    const late = async (port: number) => {
      const c = await RawH2.connect(port)
      c.write(Buffer.concat([headers(1, getBlock('/a')), frame(Type.DATA, 0, 1, Buffer.from('late'))]))
      await c.until(() => c.goaway !== undefined || c.rstCodes().length > 0, 10_000)
      return c
    }
    const ours = await late(router.port)
    const theirs = await late(varnishd.port)
    report(t, 'varnishd', theirs)
    // nghttp2 makes it a connection error (GOAWAY), varnishd a stream error (RST_STREAM), or,
    // when its answer to stream 1 is under way (a race seen under load), it closes the session
    // without either: the reference is reported, ours is held to STREAM_CLOSED.
    assert.equal(ours.goaway?.code ?? ours.rstCodes()[0], Code.STREAM_CLOSED)
    if (!theirs.closed) assert.equal(theirs.goaway?.code ?? theirs.rstCodes()[0], Code.STREAM_CLOSED)
    ours.destroy()
    theirs.destroy()
  })

  test('DATA on a closed stream: dropped, no state kept, the session goes on', async () => {
    const c = await RawH2.connect(router.port)
    c.write(headers(5, getBlock('/a')))
    await c.until(() => c.frames.some((f) => f.stream === 5 && (f.flags & END_STREAM) !== 0))
    // DATA on stream 5, closed both ways now. (A stream ID that goes backwards: h2-streams.test.ts.)
    c.write(frame(Type.DATA, 0, 5, Buffer.from('late')))
    c.write(headers(7, getBlock('/a')))
    await c.until(() => c.frames.some((f) => f.type === Type.HEADERS && f.stream === 7))
    assert.ok(c.frames.some((f) => f.type === Type.HEADERS && f.stream === 7), 'stream 7 answered')
    assert.equal(c.goaway, undefined)
    c.destroy()
  })
})
