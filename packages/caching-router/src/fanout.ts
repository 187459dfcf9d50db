import http from 'node:http'
import { formatAddress, type HostPort } from '@edgestack/common'
import { adminCommand } from './admin-client.js'

/** One node's answer to a fanned-out order: its status, or why it could not be reached. */
export interface NodeAnswer {
  node: HostPort
  ok: boolean
  /** `200 ...` for the CLI, `200 OK` for HTTP, or the error. */
  line: string
}

/**
 * A CLI command (`ban ...`, `param.set ...`, `vcl.load ...`) on every node's `-T`, at once:
 * varnishd and caching-router alike, each answering for itself. A node that cannot be reached
 * or refuses is reported and does not stop the others (a ban must reach every node that is up).
 */
export function fanoutCli(nodes: readonly HostPort[], secret: Buffer | undefined, words: readonly string[]): Promise<NodeAnswer[]> {
  // As varnishadm sends its arguments (do_args: blank-separated, unquoted; varnishd takes a
  // quoted command name as an unknown request). A line break, which would start a second
  // command, is refused by the command line.
  const line = words.join(' ')
  return Promise.all(
    nodes.map((node) =>
      adminCommand(node, secret, line).then(
        ({ status, body }) => ({ node, ok: status === 200, line: `${status} ${firstLine(body)}`.trimEnd() }),
        (err: Error) => ({ node, ok: false, line: err.message }),
      ),
    ),
  )
}

export interface HttpOrder {
  method: string
  path: string
  headers: Readonly<Record<string, string>>
}

/**
 * An HTTP request on every node's `-a` (PURGE, an xkey purge header, whatever the nodes' VCL
 * turns into a purge): purges and xkey live in VCL, not in the CLI, so they travel as requests.
 * A 2xx answer is success, as curl -f would count it.
 */
export function fanoutHttp(nodes: readonly HostPort[], order: HttpOrder): Promise<NodeAnswer[]> {
  return Promise.all(nodes.map((node) => oneRequest(node, order)))
}

function oneRequest(node: HostPort, order: HttpOrder): Promise<NodeAnswer> {
  return new Promise((resolve) => {
    const req = http.request({ host: node.host, port: node.port, method: order.method, path: order.path, headers: order.headers, agent: false, timeout: 10_000 }, (res) => {
      const status = res.statusCode ?? 0
      res.resume()
      res.on('error', () => undefined)
      resolve({ node, ok: status >= 200 && status < 300, line: `${status} ${res.statusMessage ?? ''}`.trimEnd() })
    })
    req.on('timeout', () => req.destroy(new Error(`${formatAddress(node)}: no answer`)))
    req.on('error', (err) => resolve({ node, ok: false, line: `cannot reach ${formatAddress(node)}: ${err.message}` }))
    req.end()
  })
}

const firstLine = (body: string) => body.trim().split('\n', 1)[0] ?? ''
