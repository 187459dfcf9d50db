import { type ConnectionLimit, Histogram, type MetricFamily } from '@edgestack/common'

export interface StubStatusCounts {
  active: number
  accepted: number
  handled: number
  requests: number
  reading: number
  writing: number
  waiting: number
}

/**
 * ngx_http_stub_status_module's counters for this process, over every server generation a
 * reload leaves draining: accepts, handled and requests only grow; the connection states are
 * counted from the open connections when asked.
 */
export class StubStatus {
  accepted = 0
  handled = 0
  requests = 0
  /** $request_time's span, from the head to the last byte sent (nginx's exporter has no histogram; edgestack's name). */
  readonly requestSeconds = new Histogram()
  readonly #limits = new Set<ConnectionLimit>()

  /** A server's connections (its shared worker_connections limit) count while it runs. */
  track(limit: ConnectionLimit): () => void {
    this.#limits.add(limit)
    return () => this.#limits.delete(limit)
  }

  counts(): StubStatusCounts {
    const c: StubStatusCounts = { active: 0, accepted: this.accepted, handled: this.handled, requests: this.requests, reading: 0, writing: 0, waiting: 0 }
    for (const limit of this.#limits) {
      for (const conn of limit.open) {
        c.active++
        c[conn.phase]++
      }
    }
    return c
  }
}

/** stub_status's page, byte for byte as ngx_http_stub_status_handler prints it (trailing spaces included). */
export function stubStatusText(c: StubStatusCounts): string {
  return `Active connections: ${c.active} \nserver accepts handled requests\n ${c.accepted} ${c.handled} ${c.requests} \nReading: ${c.reading} Writing: ${c.writing} Waiting: ${c.waiting} \n`
}

/**
 * nginx-prometheus-exporter's families from stub_status (its collector/nginx.go), so that its
 * dashboards read ours; `nginx_up` is the exporter's own "the scrape worked".
 */
export function nginxFamilies(c: StubStatusCounts): MetricFamily[] {
  return [
    { name: 'nginx_connections_accepted', type: 'counter', help: 'Accepted client connections', samples: [{ value: c.accepted }] },
    { name: 'nginx_connections_active', type: 'gauge', help: 'Active client connections', samples: [{ value: c.active }] },
    { name: 'nginx_connections_handled', type: 'counter', help: 'Handled client connections', samples: [{ value: c.handled }] },
    { name: 'nginx_connections_reading', type: 'gauge', help: 'Connections where NGINX is reading the request header', samples: [{ value: c.reading }] },
    { name: 'nginx_connections_waiting', type: 'gauge', help: 'Idle client connections', samples: [{ value: c.waiting }] },
    {
      name: 'nginx_connections_writing',
      type: 'gauge',
      help: 'Connections where NGINX is writing the response back to the client',
      samples: [{ value: c.writing }],
    },
    { name: 'nginx_http_requests_total', type: 'counter', help: 'Total http requests', samples: [{ value: c.requests }] },
  ]
}

/** What --metrics publishes: the exporter's stub_status families and the request-duration histogram. */
export function serverFamilies(stub: StubStatus): MetricFamily[] {
  return [
    ...nginxFamilies(stub.counts()),
    stub.requestSeconds.family('static_server_request_duration_seconds', 'From the request head to the last byte of the response ($request_time).'),
  ]
}
