import https from 'node:https'
import http from 'node:http'

export interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/** One request with Node's own client (a real peer, not a mock); `ca` trusts the dev CA. */
export function fetchRaw(url: string, opts: { ca?: string; method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const u = new URL(url)
  const lib = u.protocol === 'https:' ? https : http
  return new Promise((resolve, reject) => {
    const req = lib.request(
      u,
      { method: opts.method ?? 'GET', headers: opts.headers, ca: opts.ca, agent: false },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
        res.on('error', reject)
      },
    )
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout: ${url}`)))
    req.on('error', reject)
    req.end()
  })
}
