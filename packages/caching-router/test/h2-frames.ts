import net from 'node:net'

// HTTP/2 frames written by hand (RFC 9113 §4, §6) for the attack battery: what a hostile
// client sends, byte for byte, with no HTTP/2 library that would refuse to send it.

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

export enum Type {
  DATA = 0x0,
  HEADERS = 0x1,
  RST_STREAM = 0x3,
  SETTINGS = 0x4,
  PING = 0x6,
  GOAWAY = 0x7,
  WINDOW_UPDATE = 0x8,
  CONTINUATION = 0x9,
}

export const END_STREAM = 0x1
export const ACK = 0x1
export const END_HEADERS = 0x4

/** RFC 9113 §7 error codes the tests look for. */
export const Code = { NO_ERROR: 0, PROTOCOL_ERROR: 1, FLOW_CONTROL_ERROR: 3, STREAM_CLOSED: 5, FRAME_SIZE_ERROR: 6, REFUSED_STREAM: 7, CANCEL: 8, COMPRESSION_ERROR: 9, ENHANCE_YOUR_CALM: 11 } as const

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(stream, 5)
  return Buffer.concat([head, payload])
}

export function settings(pairs: Array<[number, number]> = []): Buffer {
  const p = Buffer.alloc(pairs.length * 6)
  pairs.forEach(([id, value], i) => {
    p.writeUInt16BE(id, i * 6)
    p.writeUInt32BE(value, i * 6 + 2)
  })
  return frame(Type.SETTINGS, 0, 0, p)
}

export function rstStream(stream: number, code: number): Buffer {
  const p = Buffer.alloc(4)
  p.writeUInt32BE(code)
  return frame(Type.RST_STREAM, 0, stream, p)
}

export function windowUpdate(stream: number, increment: number): Buffer {
  const p = Buffer.alloc(4)
  p.writeUInt32BE(increment)
  return frame(Type.WINDOW_UPDATE, 0, stream, p)
}

/** RFC 7541 §5.1 integer with an n-bit prefix, the first byte's high bits `mask`. */
export function hpackInt(n: number, prefix: number, mask = 0): Buffer {
  const max = (1 << prefix) - 1
  if (n < max) return Buffer.from([mask | n])
  const out = [mask | max]
  let rest = n - max
  while (rest >= 128) {
    out.push((rest & 0x7f) | 0x80)
    rest = Math.floor(rest / 128)
  }
  out.push(rest)
  return Buffer.from(out)
}

function str(s: string): Buffer {
  const b = Buffer.from(s, 'latin1')
  return Buffer.concat([hpackInt(b.length, 7), b])
}

/** A literal field without indexing (RFC 7541 §6.2.2), new name. */
export function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0]), str(name), str(value)])
}

/** A literal field with incremental indexing (§6.2.1): it enters the dynamic table at index 62. */
export function literalIndexed(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x40]), str(name), str(value)])
}

/** An indexed field (§6.1). */
export function indexed(index: number): Buffer {
  return hpackInt(index, 7, 0x80)
}

/** A GET's header block: the pseudo-fields and Host, as literals. */
export function getBlock(path: string, extra: Buffer[] = []): Buffer {
  return Buffer.concat([literal(':method', 'GET'), literal(':scheme', 'http'), literal(':path', path), literal(':authority', 'test'), ...extra])
}

export interface Frame {
  type: number
  flags: number
  stream: number
  payload: Buffer
}

/** A raw connection that reads the server's frames (after any bytes before the first frame). */
export class RawH2 {
  readonly socket: net.Socket
  readonly frames: Frame[] = []
  closed = false
  #buf = Buffer.alloc(0)
  #waiters: Array<() => void> = []

  private constructor(socket: net.Socket) {
    this.socket = socket
    socket.on('data', (c: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, c])
      while (this.#buf.length >= 9) {
        const len = this.#buf.readUIntBE(0, 3)
        if (this.#buf.length < 9 + len) break
        this.frames.push({ type: this.#buf[3] as number, flags: this.#buf[4] as number, stream: this.#buf.readUInt32BE(5) & 0x7fffffff, payload: this.#buf.subarray(9, 9 + len) })
        this.#buf = this.#buf.subarray(9 + len)
      }
      this.#wake()
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      this.closed = true
      this.#wake()
    })
  }

  static connect(port: number, first: Buffer[] = [PREFACE, settings()]): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => {
        for (const b of first) s.write(b)
        resolve(new RawH2(s))
      })
      s.once('error', reject)
    })
  }

  /** Writes, ignoring a server that already closed (its answer is what the test looks at). */
  write(b: Buffer): boolean {
    if (this.closed || this.socket.destroyed) return false
    return this.socket.write(b)
  }

  get goaway(): { code: number; lastStream: number } | undefined {
    const f = this.frames.find((x) => x.type === Type.GOAWAY)
    return f && { lastStream: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) }
  }

  rstCodes(): number[] {
    return this.frames.filter((f) => f.type === Type.RST_STREAM).map((f) => f.payload.readUInt32BE(0))
  }

  /** Waits until `done()` holds or the connection closed, at most `ms` (a bound, not an assertion). */
  async until(done: () => boolean, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms
    while (!done() && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()))
        this.#waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  /** Waits for the server to close the connection, at most `ms`. */
  async untilClosed(ms = 15_000): Promise<boolean> {
    await this.until(() => false, ms)
    return this.closed
  }

  destroy(): void {
    this.socket.destroy()
  }

  #wake(): void {
    const w = this.#waiters
    this.#waiters = []
    for (const f of w) f()
  }
}

/**
 * What a real client does before it counts on the server's settings: acknowledges each of
 * the server's SETTINGS frames once the one naming MAX_CONCURRENT_STREAMS (3) has come, then
 * a PING round trip, so the acknowledgements were read before the next frame.
 */
export async function acknowledgeSettings(c: RawH2): Promise<void> {
  const fromServer = () => c.frames.filter((f) => f.type === Type.SETTINGS && (f.flags & ACK) === 0)
  const named = () => fromServer().some((f) => [...Array(f.payload.length / 6).keys()].some((i) => f.payload.readUInt16BE(i * 6) === 3))
  await c.until(named, 10_000)
  for (const _ of fromServer()) c.write(frame(Type.SETTINGS, ACK, 0))
  const ping = Buffer.from('acksdone')
  c.write(frame(Type.PING, 0, 0, ping))
  await c.until(() => c.frames.some((f) => f.type === Type.PING && (f.flags & ACK) !== 0 && f.payload.equals(ping)), 10_000)
}
