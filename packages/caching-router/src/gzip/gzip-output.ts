import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import zlib from 'node:zlib'
import type { Http1Response } from '@edgestack/common'
import type { GzipParams } from './fetch-coding.js'

/**
 * An ESI page assembled for a client that takes gzip, from an object that came gzip'ed (or
 * with do_gzip): the page and its fragments are written plain into one gzip stream to the
 * client. varnishd stitches the stored gzip members together without deflating again
 * (cache_esi_deliver.c); the client gets a gzip body of the same page either way. zlib's
 * output waits for the socket's 'drain'; its input is the stored page and fragments.
 */
export class GzipOutput extends EventEmitter {
  finished = false
  readonly #res: Http1Response
  readonly #gzip: zlib.Gzip

  constructor(res: Http1Response, p: GzipParams) {
    super()
    this.#res = res
    this.#gzip = zlib.createGzip({ level: p.level, memLevel: p.memLevel, chunkSize: p.buffer })
    const resume = () => this.#gzip.resume()
    this.#gzip.on('data', (c: Buffer) => {
      if (!res.write(c)) {
        this.#gzip.pause()
        res.socket.once('drain', resume)
      }
    })
    this.#gzip.once('end', () => res.end())
    this.#gzip.once('error', () => res.destroy())
    res.once('close', () => {
      this.#gzip.destroy()
      if (!this.finished) this.emit('close')
    })
  }

  get socket(): Socket {
    return this.#res.socket
  }

  write(chunk: Buffer | string): boolean {
    if (this.finished) return false
    this.#gzip.write(chunk)
    return true
  }

  end(): void {
    if (this.finished) return
    this.finished = true
    this.#gzip.end()
    this.emit('finish')
  }

  destroy(): void {
    this.finished = true
    this.#gzip.destroy()
    this.#res.destroy()
  }
}
