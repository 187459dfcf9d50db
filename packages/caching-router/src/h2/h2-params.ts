/**
 * varnishd's HTTP/2 parameters (`varnishd -x parameter` of 7.1.1; the rapid-reset three are
 * 7.4.2's, VSV00013, which Debian's 7.1.1 lacks), with varnishd's units, defaults and bounds.
 * Each is read when a session starts, as varnishd's h2_new_session copies them; see
 * session-options.ts for what each one does here.
 */
export const H2_SPECS = {
  h2_header_table_size: { unit: 'bytes', default: 4096, min: 0, text: 'HTTP2 header table size.' },
  h2_initial_window_size: { unit: 'bytes', default: 65535, min: 65535, max: 2147483647, text: 'HTTP2 initial flow control window size.' },
  h2_max_concurrent_streams: { unit: 'streams', default: 100, min: 0, text: 'HTTP2 Maximum number of concurrent streams.' },
  h2_max_frame_size: { unit: 'bytes', default: 16384, min: 16384, max: 16777215, text: 'HTTP2 maximum per frame payload size we are willing to accept.' },
  h2_max_header_list_size: { unit: 'bytes', default: 2147483647, min: 0, text: 'HTTP2 maximum size of an uncompressed header list.' },
  h2_rx_window_increment: { unit: 'bytes', default: 1024 * 1024, min: 1024 * 1024, max: 1024 ** 3, text: 'HTTP2 Receive Window Increments.' },
  h2_rx_window_low_water: { unit: 'bytes', default: 10 * 1024 * 1024, min: 65535, max: 1024 ** 3, text: 'HTTP2 Receive Window low water mark.' },
  h2_rapid_reset: {
    unit: 'seconds',
    default: 1,
    min: 0,
    text: 'The upper threshold for how soon an http/2 RST_STREAM frame has to be parsed after a HEADERS frame for it to be treated as suspect and subjected to the rate limits specified by h2_rapid_reset_limit and h2_rapid_reset_period.',
  },
  h2_rapid_reset_limit: { unit: 'count', default: 100, min: 0, text: 'HTTP2 RST Allowance. Setting this parameter to 0 disables the limit.' },
  h2_rapid_reset_period: { unit: 'seconds', default: 60, min: 1, text: 'HTTP2 sliding window duration for h2_rapid_reset_limit.' },
  // The HTTP/1 send timeout too (the HTTP core's sendTimeoutMs): "no progress for so long".
  idle_send_timeout: { unit: 'seconds', default: 60, min: 0, text: 'Send timeout for individual pieces of data on client connections.' },
} as const

/**
 * h2_rxbuf_storage names the storage a request body's receive buffer comes from. We have one
 * storage, Transient's equivalent (request bodies are streamed, never stored), so only its
 * name is taken; another is refused in varnishd's words for an unknown storage.
 */
export const H2_RXBUF_STORAGE = 'Transient'
