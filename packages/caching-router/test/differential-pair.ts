import type http from 'node:http'
import { after, before } from 'node:test'
import { startOrigin } from './router-harness.js'
import { startVclRouter, type VclRouter } from './router-vcl-harness.js'
import { type RunningVarnishd, startVarnishd } from './vcl-varnishd.js'

export interface Pair {
  readonly varnishd: RunningVarnishd
  readonly router: VclRouter
}

/**
 * For a describe() block: one origin answering with `handler`, and varnishd and the router
 * on the same VCL (`vcl(originPort)`), started before its tests and stopped after them.
 * `pair()` gives both once started.
 */
export function differentialPair(
  vcl: (port: number) => string,
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): () => Pair {
  let varnishd: RunningVarnishd | undefined
  let router: VclRouter | undefined
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    const origin = await startOrigin({ after: (fn: () => Promise<void>) => closers.push(fn) } as never, handler)
    varnishd = await startVarnishd(vcl(origin.address.port))
    router = await startVclRouter(vcl(origin.address.port))
  })
  after(async () => {
    await varnishd?.stop()
    await router?.stop()
    for (const close of closers) await close()
  })
  return () => {
    if (varnishd === undefined || router === undefined) throw new Error('the pair did not start')
    return { varnishd, router }
  }
}
