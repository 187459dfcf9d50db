import net from 'node:net'
import { formatAddress, type HostPort, StartupError } from '@edgestack/common'
import { authResponse } from './mgt/cli-session.js'

/**
 * A minimal varnishadm: connects to `-T`, answers the `-S` challenge, runs one command and
 * resolves with its status and body. Used by `caching-router stat`.
 */
export function adminCommand(address: HostPort, secret: Buffer | undefined, command: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(address.port, address.host)
    socket.setTimeout(10_000, () => socket.destroy(new StartupError(`${formatAddress(address)}: no answer`)))
    let buffered = Buffer.alloc(0)
    let authed = false
    let state: 'banner' | 'command' = 'banner'
    socket.on('error', (err) => reject(new StartupError(`cannot reach ${formatAddress(address)}: ${err.message}`, { cause: err })))
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      while (buffered.length >= 13) {
        const status = Number(buffered.subarray(0, 3).toString('latin1').trim())
        const length = Number(buffered.subarray(4, 12).toString('latin1').trim())
        if (buffered.length < 13 + length + 1) return
        const body = buffered.subarray(13, 13 + length).toString('utf8')
        buffered = buffered.subarray(13 + length + 1)
        if (state === 'command') {
          socket.end()
          resolve({ status, body })
          return
        }
        if (status === 107 && secret !== undefined && !authed) {
          authed = true
          socket.write(`auth ${authResponse(body.slice(0, 32), secret)}\n`)
        } else if (status === 200) {
          state = 'command'
          socket.write(`${command}\n`)
        } else {
          socket.destroy()
          // varnishd answers a wrong secret with 500 and an empty body (ours with 107 again).
          reject(new StartupError(status === 107 || authed ? 'authentication refused: give the right -S secret file' : `${status} ${body.trim()}`))
          return
        }
      }
    })
  })
}
