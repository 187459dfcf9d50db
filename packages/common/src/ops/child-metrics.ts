import type { ChildProcess } from 'node:child_process'
import type { MetricFamily } from './prometheus-text.js'
import { sumFamilies } from './prometheus-text.js'
import { tellManager } from '../daemon/child-orders.js'

interface MetricsRequest {
  kind: 'metrics'
  id: number
}
interface MetricsReply {
  kind: 'metrics-reply'
  id: number
  families: MetricFamily[]
}

/**
 * A manager's child answers its manager's metrics requests over the IPC channel with its own
 * counters; the manager, which serves `--metrics`, adds them up (collectFromChildren).
 */
export function answerMetricRequests(collect: () => MetricFamily[] | Promise<MetricFamily[]>): void {
  process.on('message', (m: MetricsRequest) => {
    if (m?.kind !== 'metrics' || typeof m.id !== 'number') return
    // A child with threads of its own (caching-router --workers) asks them first.
    void Promise.resolve(collect()).then((families) => tellManager({ kind: 'metrics-reply', id: m.id, families } satisfies MetricsReply))
  })
}

let nextId = 1

/**
 * Asks every child for its counters and sums them. A child that does not answer within
 * `timeoutMs` (dying, busy starting) is left out of this scrape rather than holding it; a dead
 * child's counters leave with it, which Prometheus' rate() reads as a counter reset.
 */
export async function collectFromChildren(children: readonly ChildProcess[], timeoutMs = 2000): Promise<MetricFamily[]> {
  const id = nextId++
  const answers = await Promise.all(
    children.map(
      (child) =>
        new Promise<MetricFamily[] | undefined>((resolve) => {
          if (!child.connected) return resolve(undefined)
          const done = (value: MetricFamily[] | undefined) => {
            clearTimeout(timer)
            child.off('message', onMessage)
            child.off('exit', onExit)
            resolve(value)
          }
          const onMessage = (m: MetricsReply) => {
            if (m?.kind === 'metrics-reply' && m.id === id) done(m.families)
          }
          const onExit = () => done(undefined)
          const timer = setTimeout(() => done(undefined), timeoutMs)
          child.on('message', onMessage)
          child.once('exit', onExit)
          child.send({ kind: 'metrics', id } satisfies MetricsRequest, (err) => {
            if (err) done(undefined)
          })
        }),
    ),
  )
  return sumFamilies(answers.filter((a): a is MetricFamily[] => a !== undefined))
}
