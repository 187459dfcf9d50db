import type { Server } from 'node:net'

/** Listens on loopback; a bind failure becomes one line on stderr (through runMain), not a stack. */
export function listenOn(server: Server, port: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(Number(port ?? 0), '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
}
