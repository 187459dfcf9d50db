import type { ClientHead } from './proxy-response.js'
import type { RequestState } from './request-state.js'
import { baseHeaders, finishHeaders } from './respond.js'
import type { Answer } from './upstream-exchange.js'

/**
 * A backend's 101 to an Upgrade the config passed on (websocket): nginx writes the head
 * itself (Server, Date, `Connection: upgrade`, then the backend's fields) and from then on
 * copies bytes both ways until either side ends (ngx_http_upstream_upgrade).
 */
export function upgrade(st: RequestState, answer: Answer, head: ClientHead): void {
  const list = finishHeaders(st, 101, [...baseHeaders(st.conf.proxyPassHeaders), ...head.list])
  let text = `HTTP/1.1 ${head.statusText}\r\n`
  for (let i = 0; i < list.length; i += 2) {
    text += `${list[i]}: ${list[i + 1]}\r\n`
    // nginx's own Connection comes right after Server and Date.
    if (i === 2 || (i === 0 && list[2]?.toLowerCase() !== 'date')) text += 'Connection: upgrade\r\n'
  }
  text += '\r\n'
  st.res.statusCode = 101
  const conn = answer.lease.socket
  const { socket, rest } = st.res.hijack()
  conn.on('error', () => socket.destroy())
  socket.on('error', () => conn.destroy())
  socket.write(text, 'latin1')
  if (answer.rest.length > 0) socket.write(answer.rest)
  if (rest.length > 0) conn.write(rest)
  socket.pipe(conn)
  conn.pipe(socket)
  conn.resume()
  // Either side finishing ends the tunnel, as nginx finalizes an upgraded connection: our
  // client sockets are half-open capable, so without this a FIN would leave both ends open.
  socket.on('end', () => conn.end(() => conn.destroy()))
  conn.on('end', () => socket.end(() => socket.destroy()))
  conn.on('close', () => socket.destroy())
  socket.on('close', () => conn.destroy())
}
