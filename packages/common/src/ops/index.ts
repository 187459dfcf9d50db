export * from './child-metrics.js'
export * from './ops-server.js'
export * from './process-metrics.js'
export * from './prometheus-text.js'
