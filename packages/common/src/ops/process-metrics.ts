import { single, type MetricFamily } from './prometheus-text.js'

// process_start_time_seconds as client_golang computes it: the wall clock now minus the uptime.
const startTimeSeconds = Math.round((Date.now() / 1000 - process.uptime()) * 1000) / 1000

/**
 * The `process_*` families every Prometheus client library exports (client_golang's process
 * collector), for the process that serves the metrics: the manager, where there is one.
 */
export function processMetrics(): MetricFamily[] {
  const cpu = process.cpuUsage()
  return [
    single('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.', (cpu.user + cpu.system) / 1e6),
    single('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', process.memoryUsage.rss()),
    single('process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.', startTimeSeconds),
  ]
}
