import net from 'node:net'
import type { Backend, ProbeOptions } from './directors.js'

/** One probe's outcome, for logs and tests. */
export interface ProbeResult {
  readonly backend: string
  readonly good: boolean
  readonly healthy: boolean
  readonly detail: string
}

/**
 * Health checks as varnish runs them (cache_backend_probe.c): every `.interval` send the probe
 * request on a fresh connection, count it good when the status line arrives within `.timeout`
 * and carries `.expected_response`; the backend is healthy while at least `.threshold` of the
 * last `.window` probes were good. `.initial` probes count as good at start.
 */
export class ProbeRunner {
  #backend: Backend
  #probe: ProbeOptions
  #window: boolean[] = []
  #timer: NodeJS.Timeout | undefined
  /** Ends the probe in flight at once (its socket and timeout timer), for stop(). */
  #abort: (() => void) | undefined
  #stopped = false
  #onResult: ((r: ProbeResult) => void) | undefined

  constructor(backend: Backend, probe: ProbeOptions, onResult?: (r: ProbeResult) => void) {
    this.#backend = backend
    this.#probe = probe
    this.#onResult = onResult
    for (let i = 0; i < Math.min(probe.initial, probe.window); i++) this.#window.push(true)
    backend.setHealthy(this.#good() >= probe.threshold)
  }

  /** Sends the first probe at once, then one per interval until stop(). */
  start(): void {
    if (this.#stopped || this.#timer) return
    this.#tick()
  }

  stop(): void {
    this.#stopped = true
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#abort?.()
  }

  #good(): number {
    return this.#window.filter(Boolean).length
  }

  #tick(): void {
    this.#timer = undefined
    this.#once().then(
      ({ good, detail }) => {
        if (this.#stopped) return
        this.#window.push(good)
        while (this.#window.length > this.#probe.window) this.#window.shift()
        const healthy = this.#good() >= this.#probe.threshold
        this.#backend.setHealthy(healthy)
        this.#onResult?.({ backend: this.#backend.name, good, healthy, detail })
        this.#timer = setTimeout(() => this.#tick(), this.#probe.interval * 1000)
        this.#timer.unref()
      },
      () => {},
    )
  }

  #request(): string {
    if (this.#probe.request !== undefined) return this.#probe.request
    const host = this.#backend.hostHeader ?? this.#backend.host
    return `GET ${this.#probe.url} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`
  }

  #once(): Promise<{ good: boolean; detail: string }> {
    return new Promise((resolve) => {
      let done = false
      let head = ''
      const finish = (good: boolean, detail: string) => {
        if (done) return
        done = true
        clearTimeout(timer)
        socket.destroy()
        this.#abort = undefined
        resolve({ good, detail })
      }
      const b = this.#backend
      const socket = b.path !== undefined ? net.connect({ path: b.path }) : net.connect({ host: b.host, port: b.port })
      this.#abort = () => finish(false, 'stopped')
      const timer = setTimeout(() => finish(false, 'timeout'), this.#probe.timeout * 1000)
      socket.setEncoding('latin1')
      socket.on('connect', () => socket.write(this.#request()))
      socket.on('data', (chunk: string) => {
        head += chunk
        const eol = head.indexOf('\n')
        if (eol === -1 && head.length < 8192) return
        const statusLine = head.slice(0, eol === -1 ? head.length : eol).trim()
        const m = /^HTTP\/\d\.\d (\d{3})/.exec(statusLine)
        if (!m) finish(false, `bad status line: ${statusLine.slice(0, 80)}`)
        else finish(Number(m[1]) === this.#probe.expectedResponse, statusLine)
      })
      socket.on('error', (err) => finish(false, err.message))
      socket.on('end', () => finish(false, 'connection closed before a status line'))
    })
  }
}
