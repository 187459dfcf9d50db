import http from 'node:http'
import https from 'node:https'
import { gunzipSync } from 'node:zlib'

export interface ProbeExpectation {
  status: number
  /** The body's size; with `gzip`, once inflated. */
  bodyBytes: number
  /** Request fields the probe sends. */
  headers?: Record<string, string>
  /** The answer must be gzip-encoded. */
  gzip?: boolean
}

/**
 * One request, checked: a contender that answers the scenario's request wrongly is reported,
 * never measured (a fast 404 is not a fast file).
 */
export async function probe(url: string, expect: ProbeExpectation): Promise<string | undefined> {
  try {
    const r = await request(url, expect.headers ?? {}, undefined, expect.gzip)
    if (r.status !== expect.status) return `answered ${r.status}, expected ${expect.status}`
    if (expect.gzip && r.headers['content-encoding'] !== 'gzip') return 'answered without Content-Encoding: gzip'
    if (r.bytes !== expect.bodyBytes) return `sent a ${r.bytes}-byte body${expect.gzip ? ' once inflated' : ''}, expected ${expect.bodyBytes}`
    return undefined
  } catch (err) {
    return `request failed: ${(err as Error).message}`
  }
}

/** A bounded burst of keep-alive requests: the warm-up of a quick run (JIT, pools, caches). */
export async function burst(url: string, opts: { requests: number; concurrency: number; headers?: Record<string, string> }) {
  const u = new URL(url)
  const agent =
    u.protocol === 'https:'
      ? new https.Agent({ keepAlive: true, maxSockets: opts.concurrency, rejectUnauthorized: false })
      : new http.Agent({ keepAlive: true, maxSockets: opts.concurrency })
  let left = opts.requests
  const worker = async () => {
    while (left > 0) {
      left--
      await request(url, opts.headers ?? {}, agent).catch(() => undefined)
    }
  }
  try {
    await Promise.all(Array.from({ length: opts.concurrency }, worker))
  } finally {
    agent.destroy()
  }
}

function request(
  url: string,
  headers: Record<string, string>,
  agent: http.Agent | undefined,
  inflate = false,
): Promise<{ status: number; bytes: number; headers: http.IncomingHttpHeaders }> {
  const u = new URL(url)
  const lib = u.protocol === 'https:' ? https : http
  return new Promise((resolve, reject) => {
    const req = lib.request(u, { headers, agent: agent ?? false, rejectUnauthorized: false }, (res) => {
      let bytes = 0
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => {
        bytes += c.length
        if (inflate) chunks.push(c)
      })
      res.on('end', () => {
        if (inflate && res.headers['content-encoding'] === 'gzip') bytes = gunzipSync(Buffer.concat(chunks)).length
        resolve({ status: res.statusCode ?? 0, bytes, headers: res.headers })
      })
      res.on('error', reject)
    })
    req.setTimeout(10_000, () => req.destroy(new Error('timed out after 10 s')))
    req.on('error', reject)
    req.end()
  })
}

/** The origin's request counter: how many requests got past the cache. */
export async function originCount(port: number): Promise<number> {
  const r = await new Promise<string>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/__count', agent: false }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => {
        body += c.toString()
      })
      res.on('end', () => resolve(body))
      res.on('error', reject)
    })
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')))
    req.on('error', reject)
  })
  return Number(r)
}
