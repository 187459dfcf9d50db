import type { Socket } from 'node:net'

/** Longest backend response head we rewrite; a longer one goes to the HTTP parser as it came. */
const MAX_HEAD_BYTES = 65536
const CONNECTION_CLOSE = Buffer.from('Connection: close\r\n\r\n', 'latin1')

/**
 * Lets undici read a backend response head whose lines end with a bare LF. RFC 9112 §2.2 lets
 * a recipient take LF alone as a line end, and nginx (upstream) and varnishd (backend fetch)
 * both do; undici's llhttp refuses it ("Missing expected CR") and offers no option, so the
 * fetch would fail with 502/503 where the real programs proxy the response.
 *
 * The first head on the connection is held until its empty line has arrived. A head with CRLF
 * everywhere is handed over unchanged and the connection is left alone from then on (the cost
 * is one scan per connection). A head with bare LFs is rewritten with CRLF and given
 * `Connection: close`, so undici never reads a second head on that connection without this
 * rewrite: a backend that writes bare LFs gets one response per connection. A bare CR, an
 * unfinished or too long head are left as they are for llhttp to refuse, and every head is
 * re-serialized with CRLF before it is forwarded, so the next hop never sees a bare LF.
 * Interim 1xx heads with bare LFs are rewritten and the following head read the same way.
 */
export function readBareLfHeads(socket: Socket): Socket {
  const read = socket.read.bind(socket)
  let held: Buffer | undefined
  let out: Buffer[] = []
  let done = false
  socket.read = (size?: number) => {
    if (done) return read(size)
    for (;;) {
      const chunk = read() as Buffer | null
      if (chunk === null) {
        // Nothing more yet: hand over what is already rewritten, keep the unfinished head.
        if (out.length === 0) return null
        const ready = Buffer.concat(out)
        out = []
        return ready
      }
      held = held === undefined ? chunk : Buffer.concat([held, chunk])
      for (;;) {
        const step = rewriteHead(held)
        if (step === 'wait') break
        if (step === 'as-is') {
          done = true
          out.push(held)
          held = undefined
          const ready = Buffer.concat(out)
          out = []
          return ready
        }
        out.push(step.head)
        held = held.length > step.after ? held.subarray(step.after) : undefined
        if (!step.interim) {
          done = true
          if (held !== undefined) out.push(held)
          held = undefined
          const ready = Buffer.concat(out)
          out = []
          return ready
        }
        if (held === undefined) break
      }
    }
  }
  return socket
}

type Step = 'wait' | 'as-is' | { head: Buffer; after: number; interim: boolean }

function rewriteHead(buf: Buffer): Step {
  let lf = buf.indexOf(0x0a)
  let bare = false
  while (lf !== -1 && lf < MAX_HEAD_BYTES) {
    if (buf[lf - 1] !== 0x0d) bare = true
    const next = buf[lf + 1]
    const after = next === 0x0a ? lf + 2 : next === 0x0d && buf[lf + 2] === 0x0a ? lf + 3 : -1
    if (after !== -1) {
      if (next === 0x0a) bare = true
      if (!bare) return 'as-is'
      const lines = buf.toString('latin1', 0, lf).split('\n')
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i] as string
        const trimmed = line.endsWith('\r') ? line.slice(0, -1) : line
        if (trimmed.includes('\r')) return 'as-is'
        lines[i] = trimmed
      }
      const status = lines[0] as string
      const interim = status.startsWith('HTTP/') && status.charCodeAt(9) === 0x31
      const text = `${lines.join('\r\n')}\r\n`
      const head = interim ? Buffer.from(`${text}\r\n`, 'latin1') : Buffer.concat([Buffer.from(text, 'latin1'), CONNECTION_CLOSE])
      return { head, after, interim }
    }
    lf = buf.indexOf(0x0a, lf + 1)
  }
  return lf === -1 && buf.length < MAX_HEAD_BYTES ? 'wait' : 'as-is'
}

type ConnectCallback<S> = (...args: [null, S] | [Error, null]) => void

/** An undici connector (`buildConnector(...)`) whose sockets go through readBareLfHeads. */
export function readingBareLfHeads<O, S extends Socket>(connect: (opts: O, cb: ConnectCallback<S>) => void) {
  return (opts: O, cb: ConnectCallback<S>): void =>
    connect(opts, (...args) => (args[0] === null ? cb(null, readBareLfHeads(args[1]) as S) : cb(args[0], null)))
}
