import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, test } from 'node:test'
import { type EsiCase, esiCases, esiVcl, pathOf, serveEsiCorpus } from './esi-corpus.js'
import { startOrigin } from './router-harness.js'
import { startVclRouter, type VclRouter } from './router-vcl-harness.js'
import { type RunningVarnishd, skipWithoutVarnishd, startVarnishd } from './vcl-varnishd.js'

// The ESI corpus (esi-corpus.ts) through varnishd 7.1 and the router with the same VCL and
// origin: the client must get the same status, body (cut off at the same place when the page
// fails) and framing fields, with the default features and with every ESI feature on.

const ALL_FEATURES = '+esi_ignore_https,+esi_disable_xml_check,+esi_ignore_other_elements,+esi_remove_bom,+esi_include_onerror'


interface Seen {
  status: number
  body: string
  cut: boolean
  length: boolean
  chunked: boolean
  etag: string | undefined
  acceptRanges: string | undefined
}

function fetchOnce(port: number, path: string, c: EsiCase): Promise<Seen> {
  return new Promise((resolve, reject) => {
    // One Host for both peers: an include's request carries it to the origin, which echoes it.
    const headers = { Host: 'esi.test', ...c.request }
    const req = http.request({ host: '127.0.0.1', port, path, method: c.method ?? 'GET', headers, agent: false }, (res) => {
      let body = ''
      let done = false
      const finish = (cut: boolean) => {
        if (done) return
        done = true
        resolve({
          status: res.statusCode ?? 0,
          body,
          cut,
          length: res.headers['content-length'] !== undefined,
          chunked: res.headers['transfer-encoding'] === 'chunked',
          etag: res.headers.etag,
          acceptRanges: res.headers['accept-ranges'],
        })
      }
      res.setEncoding('latin1')
      res.on('data', (s: string) => {
        body += s
      })
      res.on('end', () => finish(false))
      res.on('aborted', () => finish(true))
      res.on('error', () => finish(true))
      res.on('close', () => finish(!res.complete))
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')))
    req.end()
  })
}

describe('ESI against varnishd', { skip: skipWithoutVarnishd }, () => {
  const peers: Array<{ name: string; features: string; varnishd: RunningVarnishd; router: VclRouter }> = []

  const closers: Array<() => Promise<void>> = []
  before(async () => {
    const origin = await startOrigin({ after: (fn: () => Promise<void>) => closers.push(fn) } as never, serveEsiCorpus)
    for (const features of ['default', ALL_FEATURES]) {
      const text = esiVcl(origin.address.port)
      const varnishd = await startVarnishd(text, ['-p', `feature=${features}`])
      const router = await startVclRouter(text, 'boot.vcl', { feature: features })
      peers.push({ name: features === 'default' ? 'default features' : 'every ESI feature', features, varnishd, router })
    }
  })

  after(async () => {
    for (const p of peers) {
      await p.varnishd.stop()
      await p.router.stop()
    }
    for (const close of closers) await close()
  })

  for (const which of [0, 1]) {
    test(`the corpus, ${which === 0 ? 'default features' : 'every ESI feature on'}`, async () => {
      const peer = peers[which]
      assert.ok(peer)
      const theirs: Record<string, Seen> = {}
      const ours: Record<string, Seen> = {}
      // Twice: the first is a miss for the page and its fragments, the second a hit of all.
      for (const round of [1, 2]) {
        for (const c of esiCases) {
          theirs[`${c.name} #${round}`] = await fetchOnce(peer.varnishd.port, pathOf(c), c)
          ours[`${c.name} #${round}`] = await fetchOnce(peer.router.port, pathOf(c), c)
        }
      }
      // Only the cases that differ, so a failure reads as a list.
      const differ = Object.keys(theirs).filter((k) => JSON.stringify(ours[k]) !== JSON.stringify(theirs[k]))
      assert.deepEqual(
        Object.fromEntries(differ.map((k) => [k, ours[k]])),
        Object.fromEntries(differ.map((k) => [k, theirs[k]])),
      )
    })
  }
})
