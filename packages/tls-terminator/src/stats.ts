import { Histogram, type MetricFamily } from '@edgestack/common'

/**
 * What `--metrics` publishes for the terminator, kept per process and across reloads (a reload
 * makes new listeners, not new counters). stunnel has no exporter whose names dashboards use,
 * so the names follow Prometheus' conventions under `tls_terminator_`. Labels are bounded:
 * protocol versions and cipher names are OpenSSL's short lists, failure reasons Node's and
 * OpenSSL's error codes, services the configuration's sections.
 */
export class TerminatorStats {
  connections = 0
  active = 0
  bytesReceived = 0
  bytesSent = 0
  /** From accept to the handshake's end: what a client waits before its first byte can go. */
  readonly handshakeSeconds = new Histogram()
  /** From the handshake's end to the close: how long clients stay. */
  readonly connectionSeconds = new Histogram()
  readonly #handshakes = new Map<string, { version: string; cipher: string; n: number }>()
  readonly #failures = new Map<string, number>()
  readonly #backendFailures = new Map<string, number>()

  handshake(version: string, cipher: string): void {
    const key = `${version} ${cipher}`
    const h = this.#handshakes.get(key)
    if (h) h.n++
    else this.#handshakes.set(key, { version, cipher, n: 1 })
  }

  /** `reason`: the error's code (ERR_SSL_..., ECONNRESET, ERR_TLS_HANDSHAKE_TIMEOUT). */
  handshakeFailed(reason: string): void {
    this.#failures.set(reason, (this.#failures.get(reason) ?? 0) + 1)
  }

  backendConnectFailed(service: string): void {
    this.#backendFailures.set(service, (this.#backendFailures.get(service) ?? 0) + 1)
  }

  families(): MetricFamily[] {
    return [
      { name: 'tls_terminator_connections_total', type: 'counter', help: 'TCP connections accepted.', samples: [{ value: this.connections }] },
      { name: 'tls_terminator_connections_active', type: 'gauge', help: 'Client connections open now.', samples: [{ value: this.active }] },
      {
        name: 'tls_terminator_handshakes_total',
        type: 'counter',
        help: 'TLS handshakes completed, by protocol version and cipher.',
        samples: [...this.#handshakes.values()].map((h) => ({ labels: { version: h.version, cipher: h.cipher }, value: h.n })),
      },
      {
        name: 'tls_terminator_handshake_failures_total',
        type: 'counter',
        help: 'TLS handshakes that failed, by reason (the error code).',
        samples: [...this.#failures].map(([reason, n]) => ({ labels: { reason }, value: n })),
      },
      {
        name: 'tls_terminator_received_bytes_total',
        type: 'counter',
        help: 'Bytes received from clients and passed to backends (counted as connections close).',
        samples: [{ value: this.bytesReceived }],
      },
      {
        name: 'tls_terminator_sent_bytes_total',
        type: 'counter',
        help: 'Bytes received from backends and passed to clients (counted as connections close).',
        samples: [{ value: this.bytesSent }],
      },
      {
        name: 'tls_terminator_backend_connect_failures_total',
        type: 'counter',
        help: 'Backend connection attempts that failed, by service.',
        samples: [...this.#backendFailures].map(([service, n]) => ({ labels: { service }, value: n })),
      },
      this.handshakeSeconds.family('tls_terminator_handshake_duration_seconds', 'From TCP accept to the end of the TLS handshake.'),
      this.connectionSeconds.family('tls_terminator_connection_duration_seconds', 'From the end of the TLS handshake to the close of the connection.'),
    ]
  }
}

/**
 * Reloads (SIGHUP, or the certificate files changing) and how they went, counted where they
 * are decided: in the process that serves alone, or in the manager of --workers, once for all.
 * A failure means a broken or mismatched file was left on disk and the old certificate serves.
 */
export class ReloadStats {
  succeeded = 0
  failed = 0

  count(error: Error | undefined): void {
    if (error) this.failed++
    else this.succeeded++
  }

  families(): MetricFamily[] {
    return [
      {
        name: 'tls_terminator_reloads_total',
        type: 'counter',
        help: 'Reloads of the configuration and certificates (SIGHUP or a certificate file changed), by result.',
        samples: [
          { labels: { result: 'success' }, value: this.succeeded },
          { labels: { result: 'failure' }, value: this.failed },
        ],
      },
    ]
  }
}
