import type net from 'node:net'
import type tls from 'node:tls'

/**
 * Every backend socket of the process reads into this one buffer (net's `onread`) instead of a
 * fresh 64 KiB allocation per read that is then shrunk, wrapped and left to the GC: on the
 * keep-alive path that is most of the JS-side cost of a response. Sharing it is safe because
 * a read's callback runs to completion before the next read anywhere, and the callback never
 * lets a view of it outlive the call (see `#chunk`). One buffer, not one per connection, so
 * idle connections cost no more memory than with `pipe`.
 */
const SHARED = Buffer.allocUnsafe(64 * 1024)

/**
 * The backend-to-client half of a connection, with `pipe`'s backpressure: when the client's
 * write buffer is full the backend stops being read until the client drains. The backend's
 * end is not passed on here: connection.ts decides how the client is closed (TIMEOUTclose).
 */
export class ClientForwarder {
  #client: tls.TLSSocket | undefined
  #backend: net.Socket | undefined
  /** Bytes read before `attach` (none in practice: the backend is attached on connect). */
  #early: Buffer[] = []
  #waitingForDrain = false

  /** For `net.connect`: the backend's reads land in the shared buffer and come here. */
  readonly onread: net.OnReadOpts = {
    buffer: SHARED,
    callback: (bytes, buffer) => {
      // `buffer` is SHARED, the Buffer given above.
      this.#chunk((buffer as Buffer).subarray(0, bytes))
      return true
    },
  }

  attach(client: tls.TLSSocket, backend: net.Socket): void {
    this.#client = client
    this.#backend = backend
    const early = this.#early
    this.#early = []
    for (const chunk of early) this.#chunk(chunk, true)
  }

  #chunk(view: Buffer, owned = false): void {
    const client = this.#client
    if (!client) {
      this.#early.push(owned ? view : Buffer.from(view))
      return
    }
    // The client is gone or closing: its own close handler tears the backend down.
    if (client.destroyed || !client.writable) return
    // With nothing queued ahead of it, a single buffer written to a TLS socket goes straight
    // into SSL_write, which encrypts it (or, when it cannot, node's TLSWrap copies it) before
    // write() returns. Anything that would wait in the stream's queue keeps a reference, so
    // then the bytes must be our own copy, not a view of the shared buffer.
    const direct = owned || (client.writableLength === 0 && client.writableCorked === 0)
    if (client.write(direct ? view : Buffer.from(view))) return
    if (this.#waitingForDrain) return
    this.#waitingForDrain = true
    const backend = this.#backend as net.Socket
    backend.pause()
    client.once('drain', () => {
      this.#waitingForDrain = false
      backend.resume()
    })
  }
}
