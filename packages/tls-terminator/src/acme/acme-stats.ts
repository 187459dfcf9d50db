import type { MetricFamily } from '@edgestack/common'

/** What `tls-terminator acme --metrics` publishes: how renewal goes, for an alert before expiry. */
export class AcmeStats {
  succeeded = 0
  failed = 0
  /** Failures since the last success: the backoff's exponent. */
  failingInARow = 0
  notAfter: Date | undefined
  nextAttempt: Date | undefined

  families(): MetricFamily[] {
    const seconds = (d: Date | undefined) => (d ? d.getTime() / 1000 : Number.NaN)
    return [
      {
        name: 'tls_terminator_acme_orders_total',
        type: 'counter',
        help: 'ACME orders (issuance or renewal), by result.',
        samples: [
          { labels: { result: 'success' }, value: this.succeeded },
          { labels: { result: 'failure' }, value: this.failed },
        ],
      },
      { name: 'tls_terminator_acme_failures_in_a_row', type: 'gauge', help: 'ACME orders that failed since the last success.', samples: [{ value: this.failingInARow }] },
      {
        name: 'tls_terminator_acme_certificate_not_after_timestamp_seconds',
        type: 'gauge',
        help: 'When the certificate on disk expires (unix time; NaN when there is none).',
        samples: [{ value: seconds(this.notAfter) }],
      },
      {
        name: 'tls_terminator_acme_next_attempt_timestamp_seconds',
        type: 'gauge',
        help: 'When the next renewal check or retry is due (unix time).',
        samples: [{ value: seconds(this.nextAttempt) }],
      },
    ]
  }
}
