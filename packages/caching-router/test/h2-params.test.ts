import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Code, END_HEADERS, END_STREAM, frame, getBlock, literal, RawH2, Type } from './h2-frames.js'
import { h2Vcl, startH2Origin } from './h2-origin.js'
import { startVclRouter } from './router-vcl-harness.js'

// The h2_* parameters each change what a client sees: the server's SETTINGS, its connection
// window, a stream past h2_max_concurrent_streams, a header list past h2_max_header_list_size.

describe('HTTP/2 parameters have their effect', () => {
  test('SETTINGS, the connection window, the stream limit and the header list bound follow -p', async (t) => {
    const o = await startH2Origin()
    t.after(() => o.server.close())
    const router = await startVclRouter(h2Vcl(o.port), 'boot.vcl', {
      feature: '+http2',
      h2_max_concurrent_streams: '1',
      h2_initial_window_size: '100000',
      h2_max_frame_size: '32768',
      h2_header_table_size: '8192',
      h2_max_header_list_size: '2000',
      h2_rx_window_low_water: '2M',
      h2_rx_window_increment: '1M',
    })
    t.after(() => router.stop())
    const c = await RawH2.connect(router.port)
    t.after(() => c.destroy())
    await c.until(() => c.frames.some((f) => f.type === Type.WINDOW_UPDATE && f.stream === 0))
    // MAX_CONCURRENT_STREAMS comes in a SETTINGS frame of its own (src/h2/session.ts).
    const values = new Map<number, number>()
    for (const s of c.frames.filter((f) => f.type === Type.SETTINGS && (f.flags & 1) === 0)) {
      for (let i = 0; i < s.payload.length; i += 6) values.set(s.payload.readUInt16BE(i), s.payload.readUInt32BE(i + 2))
    }
    // RFC 9113 §6.5.2 identifiers.
    assert.equal(values.get(0x1), 8192, 'HEADER_TABLE_SIZE')
    assert.equal(values.get(0x3), 1, 'MAX_CONCURRENT_STREAMS')
    assert.equal(values.get(0x4), 100000, 'INITIAL_WINDOW_SIZE')
    assert.equal(values.get(0x5), 32768, 'MAX_FRAME_SIZE')
    assert.equal(values.get(0x6), 2000, 'MAX_HEADER_LIST_SIZE')
    // The connection window grows from 65535 to low water + increment.
    const wu = c.frames.find((f) => f.type === Type.WINDOW_UPDATE && f.stream === 0)
    assert.equal(wu?.payload.readUInt32BE(0), 3 * 1024 * 1024 - 65535)
    // Our settings apply once the client acknowledges them (RFC 9113 §6.5.3).
    c.write(Buffer.concat([frame(Type.SETTINGS, 1, 0), frame(Type.SETTINGS, 1, 0)]))
    // A header list over 2000 bytes: RST_STREAM ENHANCE_YOUR_CALM, as varnishd.
    c.write(frame(Type.HEADERS, END_STREAM | END_HEADERS, 1, getBlock('/a', [literal('x-big', 'b'.repeat(2500))])))
    await c.until(() => c.rstCodes().length > 0)
    assert.deepEqual(c.rstCodes(), [Code.ENHANCE_YOUR_CALM])
    // Two streams at once with a limit of one, once acknowledged: the second is refused alone,
    // as varnishd does (h2-streams.test.ts). Stream 3 waits for its body (no END_STREAM), so
    // it is still open when stream 5 comes.
    c.write(frame(Type.HEADERS, END_HEADERS, 3, Buffer.concat([literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', '/pass/x'), literal(':authority', 't')])))
    c.write(frame(Type.HEADERS, END_STREAM | END_HEADERS, 5, getBlock('/a')))
    await c.until(() => c.rstCodes().length > 1 || c.goaway !== undefined)
    assert.deepEqual(c.rstCodes(), [Code.ENHANCE_YOUR_CALM, Code.REFUSED_STREAM])
    assert.equal(c.goaway, undefined)
  })
})
