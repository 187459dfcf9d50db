import type { Readable } from 'node:stream'
import { EdgeError, formatAddress, type HostPort, hopByHopNames, readingBareLfHeads } from '@edgestack/common'
import { buildConnector, type Dispatcher, Pool } from 'undici'

/** Where a fetch's response goes, as it arrives. */
export interface FetchSink {
  head(status: number, reason: string, headers: string[]): void
  /** A 1xx before the final response (never 100 or 101: undici handles those itself). */
  interim(status: number, reason: string, headers: string[]): void
  /** Returns false to pause the backend until `resume()`. */
  data(chunk: Buffer): boolean
  end(): void
  error(err: Error): void
}

export interface FetchRequest {
  method: string
  url: string
  headers: string[]
  body: Readable | undefined
  firstByteTimeoutMs: number
  betweenBytesTimeoutMs: number
  /**
   * http_resp_hdr_len (one field line) and http_resp_size (the whole head), as varnishd bounds
   * a backend response head: past either the fetch fails (503 "Backend fetch failed").
   */
  maxFieldBytes?: number
  maxHeadBytes?: number
}

export interface FetchControl {
  resume(): void
  abort(): void
}

// RFC 9110 §5.5: a field with CR, LF or NUL would split the response we write.
const UNSAFE = /[\r\n\0]/

/**
 * Interim responses relayed per fetch: beyond this many the backend is flooding (each 1xx
 * costs a write to the client and holds the fetch past first_byte_timeout's intent), and the
 * fetch fails as varnishd's does on any 1xx: 503 "Backend fetch failed".
 */
export const MAX_INTERIM_RESPONSES = 16

/**
 * The connections to one VCL `backend` (BackendPools makes one per backend): a keep-alive
 * pool. Fetches go through undici's `dispatch` rather than `request`: no Readable and no
 * header object per response on the pass path, and the raw header list keeps repeated fields
 * (Set-Cookie) apart.
 */
export class Backend {
  readonly #pool: Pool

  /** `socketPath`: a backend's `.path`, a Unix-domain socket (the address is then unused). */
  constructor(
    address: HostPort,
    opts: { connectTimeoutMs: number; idleTimeoutMs: number; connections?: number; socketPath?: string | undefined; maxHeaderSize?: number },
  ) {
    this.#pool = new Pool(opts.socketPath === undefined ? `http://${formatAddress(address)}` : 'http://localhost', {
      connections: opts.connections ?? 256,
      pipelining: 1,
      // varnishd's backend fetch takes bare-LF line ends in a response head (RFC 9112 §2.2).
      // A `.path` backend connects to its Unix socket (buildConnector's socketPath).
      connect: readingBareLfHeads(buildConnector({ timeout: opts.connectTimeoutMs, ...(opts.socketPath === undefined ? {} : { socketPath: opts.socketPath }) })),
      // backend_idle_timeout (varnishd: 60 s) keeps an idle connection; a backend's own
      // `Keep-Alive: timeout=N` hint still shortens it (undici takes N less 2 s), so a node
      // backend's 5 s does not race the reuse.
      keepAliveTimeout: opts.idleTimeoutMs,
      keepAliveMaxTimeout: opts.idleTimeoutMs,
      // undici's own bound on a response head (16 KiB by default) stays above http_resp_size,
      // which fetch() checks exactly.
      maxHeaderSize: Math.max(opts.maxHeaderSize ?? 0, 16 * 1024),
    })
  }

  fetch(req: FetchRequest, sink: FetchSink): FetchControl {
    let controller: Dispatcher.DispatchController | undefined
    let aborted = false
    let done = false
    let interims = 0
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c
        if (aborted) c.abort(new Error('aborted'))
      },
      onResponseStart(c, status, _parsed, reason) {
        const raw = (c as unknown as { rawHeaders: Buffer[] }).rawHeaders
        if (status < 200) {
          // RFC 9110 §15.2: an interim response, relayed ahead of the final one, never as it.
          if (++interims > MAX_INTERIM_RESPONSES) c.abort(new EdgeError('EDGE_ERR_INTERIM_FLOOD', `backend sent more than ${MAX_INTERIM_RESPONSES} interim (1xx) responses`))
          else sink.interim(status, reason || '', sanitize(raw))
          return
        }
        const tooLarge = headTooLarge(raw, reason, req.maxFieldBytes, req.maxHeadBytes)
        if (tooLarge !== undefined) {
          c.abort(new EdgeError('EDGE_ERR_BACKEND_HEAD_TOO_LARGE', tooLarge))
          return
        }
        sink.head(status, reason || '', sanitize(raw))
      },
      onResponseData(c, chunk) {
        if (!sink.data(chunk)) c.pause()
      },
      onResponseEnd() {
        if (done) return
        done = true
        sink.end()
      },
      onResponseError(_c, err) {
        if (done) return
        done = true
        // Our own abort (the client left, or the policy abandoned the fetch) is not a failure.
        if (!aborted) sink.error(err)
      },
    }
    this.#pool.dispatch(
      {
        origin: undefined,
        method: req.method as Dispatcher.HttpMethod,
        path: req.url,
        headers: req.headers,
        body: req.body ?? null,
        headersTimeout: req.firstByteTimeoutMs,
        bodyTimeout: req.betweenBytesTimeoutMs,
        reset: false,
      } as Dispatcher.DispatchOptions,
      handler,
    )
    return {
      resume: () => controller?.resume(),
      abort: () => {
        aborted = true
        if (!done) controller?.abort(new Error('aborted'))
      },
    }
  }

  close(): Promise<void> {
    return this.#pool.close()
  }

  /** The router is closing: every connection goes now, idle or not (a varnishd child's exit). */
  destroy(): Promise<void> {
    return this.#pool.destroy()
  }
}

/** Why a response head is past http_resp_hdr_len / http_resp_size (undefined: it is not). */
function headTooLarge(raw: Buffer[], reason: string | undefined, maxField: number | undefined, maxHead: number | undefined): string | undefined {
  if (maxField === undefined && maxHead === undefined) return undefined
  // The status line ("HTTP/1.1 200 OK\r\n") and the blank line count towards the head.
  let head = 15 + (reason?.length ?? 0) + 2
  for (let i = 0; i < raw.length; i += 2) {
    const line = (raw[i] as Buffer).length + 2 + (raw[i + 1] as Buffer).length
    if (maxField !== undefined && line > maxField) return `backend response field longer than http_resp_hdr_len (${maxField} bytes)`
    head += line + 2
  }
  if (maxHead !== undefined && head > maxHead) return `backend response head larger than http_resp_size (${maxHead} bytes)`
  return undefined
}

/** The backend's fields, minus hop-by-hop ones and any a client must never see (CR/LF/NUL). */
function sanitize(raw: Buffer[]): string[] {
  const out: string[] = []
  let connection: string[] | undefined
  // The fixed hop-by-hop fields go in this pass; those a Connection field names, in a second.
  const hop = hopByHopNames(undefined)
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString('latin1')
    const value = (raw[i + 1] as Buffer).toString('latin1')
    if (UNSAFE.test(name) || UNSAFE.test(value)) continue
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      connection ??= []
      connection.push(value)
    }
    if (!hop.has(name.toLowerCase())) out.push(name, value)
  }
  if (connection === undefined) return out
  const drop = hopByHopNames(connection)
  const kept: string[] = []
  for (let i = 0; i < out.length; i += 2) {
    if (!drop.has((out[i] as string).toLowerCase())) kept.push(out[i] as string, out[i + 1] as string)
  }
  return kept
}
