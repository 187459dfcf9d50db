import type { Socket } from 'node:net'
import { PassThrough } from 'node:stream'
import { ChunkedDecoder } from '@edgestack/common'

/** How a backend's body is delimited (ngx_http_proxy_input_filter_init). */
export type Framing = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' }

export interface BodyOutcome {
  /** The body ended where its framing said (the connection may be reused). */
  complete: boolean
  /** Bytes read from the backend for the body ($upstream_bytes_received less the head). */
  bytes: number
}

/**
 * Relays a backend's body as it arrives (nothing is decompressed or re-encoded: a gzip bomb
 * passes as the bytes it is). `start()` is called once before the first byte goes out, or at
 * the end for an empty body: nginx writes the head together with the first body buffer, so a
 * body that fails before any byte leaves the client with a closed connection and no head.
 * Reads are paused while the client is slow (backpressure); `readMs` bounds each wait.
 * `tap` sees every decoded body byte (proxy_cache's entry).
 */
export function relayBody(
  socket: Socket,
  rest: Buffer,
  framing: Framing,
  readMs: number,
  start: (out: PassThrough) => void,
  tap?: (c: Buffer) => void,
): Promise<BodyOutcome> {
  return new Promise((resolve) => {
    const out = new PassThrough()
    let started = false
    let bytes = 0
    let remaining = framing.kind === 'length' ? framing.length : 0
    let settled = false
    const emit = (c: Buffer) => {
      if (c.length === 0) return
      if (!started) {
        started = true
        try {
          start(out)
        } catch {
          // A head we refuse to write (InvalidResponseHeaderError): the client connection goes.
          return finish(false)
        }
      }
      // proxy_cache: the decoded body also goes into the entry being filled.
      if (tap !== undefined) tap(c)
      if (!out.write(c)) socket.pause()
    }
    // The client went away (the pipe destroyed `out`): stop reading, drop the connection, as
    // nginx does without proxy_ignore_client_abort.
    out.on('close', () => finish(false))
    out.on('drain', () => socket.resume())
    const finish = (complete: boolean) => {
      if (settled) return
      settled = true
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('close', onEnd)
      socket.off('error', onEnd)
      socket.off('timeout', onTimeout)
      socket.setTimeout(0)
      if (complete) {
        if (!started) {
          started = true
          try {
            start(out)
          } catch {
            out.destroy()
            resolve({ complete: false, bytes })
            return
          }
        }
        out.end()
      } else if (started) out.destroy(new Error('upstream body cut short'))
      else out.destroy()
      resolve({ complete, bytes })
    }
    const decoder = framing.kind === 'chunked' ? new ChunkedDecoder(emit) : undefined
    const onData = (c: Buffer) => {
      bytes += c.length
      if (decoder) {
        try {
          decoder.feed(c)
        } catch {
          // "upstream sent invalid chunked response": the answer is cut off here.
          return finish(false)
        }
        if (decoder.done) finish(true)
        return
      }
      if (framing.kind === 'length') {
        const take = c.length > remaining ? c.subarray(0, remaining) : c
        remaining -= take.length
        emit(take)
        if (remaining === 0) finish(true)
        return
      }
      emit(c)
    }
    const onEnd = () => finish(framing.kind === 'close')
    const onTimeout = () => finish(false)
    if (framing.kind === 'none' || (framing.kind === 'length' && framing.length === 0)) {
      finish(true)
      return
    }
    socket.on('data', onData)
    socket.on('end', onEnd)
    socket.on('close', onEnd)
    socket.on('error', onEnd)
    socket.on('timeout', onTimeout)
    socket.setTimeout(readMs)
    if (rest.length > 0) onData(rest)
    if (!settled) socket.resume()
  })
}
