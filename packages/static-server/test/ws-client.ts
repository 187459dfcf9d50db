import net from 'node:net'
import type { HostPort } from '@edgestack/common'

/**
 * Sends an upgrade request head, writes `ping` once the 101 head is in, and resolves with
 * everything read when the upstream's `echo:ping` arrives (or the connection ends: the caller's
 * assertions then fail on what was read).
 */
export function upgradeAndPing(addr: HostPort, head: string): Promise<string> {
  const s = net.connect(addr.port, addr.host)
  const got: Buffer[] = []
  return new Promise<string>((resolve) => {
    s.on('data', (c: Buffer) => {
      got.push(c)
      const text = Buffer.concat(got).toString()
      if (text.includes('\r\n\r\n') && !text.includes('echo:')) s.write('ping')
      if (text.includes('echo:ping')) {
        s.destroy()
        resolve(text)
      }
    })
    s.on('error', () => resolve(Buffer.concat(got).toString()))
    s.on('close', () => resolve(Buffer.concat(got).toString()))
    s.setTimeout(5000, () => s.destroy())
    s.write(head)
  })
}
