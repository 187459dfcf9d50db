import type { ReqObj } from '../policy.js'
import type { EsiInclude } from './esi-program.js'

/** Not carried into an include's request (cache_esi_deliver.c ved_include). */
const DROPPED = new Set([
  // "Don't allow conditionals, we can't use a 304", "Don't allow Range".
  'if-modified-since',
  'if-none-match',
  'range',
  // Set below to what the page's delivery can take.
  'accept-encoding',
  // "Client content already taken care of".
  'content-length',
])

/**
 * The request of an ESI include, as varnishd's ved_include makes it: the including request
 * as it came in (req->http0, before VCL changed it), a GET of `src` in HTTP/1.1, with the
 * include's Host when its src was absolute, no conditionals, no Range, and Accept-Encoding
 * `gzip` only when the page is delivered gzipped. It goes through vcl_recv with req.esi_level
 * one more than the including request's and req_top the client's request.
 */
export function includeRequest(parent: ReqObj, inc: EsiInclude, xid: number, gzip: boolean): ReqObj {
  const from = parent.http0 ?? parent.headers
  const headers: string[] = []
  for (let i = 0; i < from.length; i += 2) {
    const name = (from[i] as string).toLowerCase()
    if (DROPPED.has(name) || (inc.host !== undefined && name === 'host')) continue
    headers.push(from[i] as string, from[i + 1] as string)
  }
  if (inc.host !== undefined) headers.push('Host', inc.host)
  if (gzip) headers.push('Accept-Encoding', 'gzip')
  return {
    method: 'GET',
    url: inc.src,
    proto: 'HTTP/1.1',
    headers,
    http0: headers,
    xid,
    clientIp: parent.clientIp,
    serverIp: parent.serverIp,
    ...(parent.clientPort !== undefined ? { clientPort: parent.clientPort } : {}),
    ...(parent.serverPort !== undefined ? { serverPort: parent.serverPort } : {}),
    ...(parent.socket !== undefined ? { socket: parent.socket } : {}),
    hashAlwaysMiss: false,
    hashIgnoreBusy: false,
    esiLevel: (parent.esiLevel ?? 0) + 1,
    top: parent.top ?? parent,
  }
}
