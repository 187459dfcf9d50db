import net from 'node:net'

/** One response as read off the wire: status line, fields (lower-case names), de-chunked body. */
export interface RawResponse {
  status: number
  reason: string
  headers: Record<string, string>
  body: string
}

/**
 * Sends `bytes` on a fresh connection and reads until the server closes it, or until
 * `closeAfter` final responses are complete (then we close). The responses in order, interim
 * ones included; `closed` says the server ended the connection itself.
 */
export function rawExchange(port: number, bytes: string, opts: { closeAfter?: number; head?: boolean } = {}): Promise<{ responses: RawResponse[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    let buf = ''
    let closed = true
    const head = opts.head ?? false
    s.setEncoding('latin1')
    s.on('data', (c: string) => {
      buf += c
      // Enough final responses read and the server kept the connection: we close it.
      const finals = parseAll(buf, head).filter((r) => r.status >= 200).length
      if (opts.closeAfter !== undefined && finals >= opts.closeAfter && complete(buf, head)) {
        closed = false
        s.end()
      }
    })
    s.on('close', () => resolve({ responses: parseAll(buf, head), closed }))
    s.on('error', reject)
    s.setTimeout(10_000, () => s.destroy(new Error(`no answer: ${JSON.stringify(buf)}`)))
    s.write(bytes)
  })
}

function complete(buf: string, head: boolean): boolean {
  let rest = buf
  while (rest.length > 0) {
    const r = parseOne(rest, head)
    if (r === undefined) return false
    rest = r.rest
  }
  return true
}

function parseAll(buf: string, head: boolean): RawResponse[] {
  const out: RawResponse[] = []
  let rest = buf
  while (rest.length > 0) {
    const r = parseOne(rest, head)
    if (r === undefined) break
    out.push(r.response)
    rest = r.rest
  }
  return out
}

/** `head`: the responses answer HEAD requests and carry no body whatever their fields say. */
function parseOne(buf: string, head: boolean): { response: RawResponse; rest: string } | undefined {
  const end = buf.indexOf('\r\n\r\n')
  if (end === -1) return undefined
  const [statusLine, ...lines] = buf.slice(0, end).split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine as string)
  if (!m) throw new Error(`not a status line: ${statusLine}`)
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    const name = line.slice(0, colon).toLowerCase()
    headers[name] = headers[name] === undefined ? line.slice(colon + 1).trim() : `${headers[name]}, ${line.slice(colon + 1).trim()}`
  }
  const status = Number(m[1])
  let rest = buf.slice(end + 4)
  let body = ''
  if (status >= 200 && status !== 204 && status !== 304 && !head) {
    if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const eol = rest.indexOf('\r\n')
        if (eol === -1) return undefined
        const size = Number.parseInt(rest.slice(0, eol), 16)
        if (rest.length < eol + 2 + size + 2) return undefined
        body += rest.slice(eol + 2, eol + 2 + size)
        rest = rest.slice(eol + 2 + size + 2)
        if (size === 0) break
      }
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length'])
      if (rest.length < n) return undefined
      body = rest.slice(0, n)
      rest = rest.slice(n)
    } else {
      body = rest
      rest = ''
    }
  }
  return { response: { status, reason: m[2] as string, headers, body }, rest }
}
