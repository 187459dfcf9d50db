import zlib from 'node:zlib'
import type { BenchContext } from './layers/server.js'
import type { ProbeExpectation } from './load/probe.js'
import { type Programs, type Started, startChains, startChainsH2, startRouter, startRouterH2, startRouterWorkers, startScale, startStatic, startStaticWorkers, startTls } from './groups.js'

export type Unit = 'req/s' | 'MiB/s' | 'handshakes/s' | 'round trips/s'

/** One measured line of the table (or several, with the Node peers). */
export interface Measure {
  id: number
  title: string
  unit: Unit
  /**
   * h2: h2load -c 10 -m 10, both routers with `-p feature=+http2`: over h2c (prior knowledge),
   * or with `https` over TLS, h2 chosen by ALPN.
   */
  kind: 'http' | 'handshakes' | 'ws' | 'h2' | 'polling'
  path: string
  https: boolean
  headers?: Record<string, string>
  expect: ProbeExpectation
  /** Slot keys: our daemon, its real twin, and Node peers compared with the twin. */
  ours: string
  theirs: string
  peers: string[]
  /** Scenario 3: a hit must not reach the origin; the harness counts and says so. */
  cacheHit?: boolean
  /**
   * Ours in a simpler configuration (caching-router with the built-in VCL only): measured in
   * the same rounds, shown as its own row, and ours' cost against it noted (issue 6: the
   * article's VCL adds at most `limitPct`).
   */
  baseline?: { key: string; label: string; limitPct: number }
}

export interface Group {
  name: string
  start(ctx: BenchContext, programs: Programs): Promise<Started>
  measures: Measure[]
}

const KIB = 1024
const MIB = 1024 * 1024
/** The origin's gzip'ed 1 KiB body (peers/origin.ts), as stored and sent to gzip clients. */
const GZIP_BYTES = zlib.gzipSync(Buffer.alloc(KIB, 'a')).length

/** Files in the run's document root (css, so the article's VCL routes them to nginx). */
export const ROOT_FILES = { '1k.css': KIB, '1m.css': MIB } as const
/** Text that compresses as real stylesheets do (about 5:1), under the location with `gzip on`. */
export const TEXT_FILES = { 'text/64k.css': 64 * KIB } as const

export const GROUPS: Group[] = [
  {
    name: 'static',
    start: startStatic,
    measures: [
      {
        id: 1,
        title: 'static 1 KiB, keep-alive',
        unit: 'req/s',
        kind: 'http',
        path: '/1k.css',
        https: false,
        expect: { status: 200, bodyBytes: KIB },
        ours: 'ours',
        theirs: 'theirs',
        peers: ['serve-static'],
      },
      {
        id: 10,
        title: 'gzip on the fly, 64 KiB text, level 1',
        unit: 'req/s',
        kind: 'http',
        path: '/text/64k.css',
        https: false,
        headers: { 'Accept-Encoding': 'gzip' },
        expect: { status: 200, bodyBytes: 64 * KIB, headers: { 'Accept-Encoding': 'gzip' }, gzip: true },
        ours: 'ours',
        theirs: 'theirs',
        peers: [],
      },
      {
        id: 2,
        title: 'static 1 MiB, throughput',
        unit: 'MiB/s',
        kind: 'http',
        path: '/1m.css',
        https: false,
        expect: { status: 200, bodyBytes: MIB },
        ours: 'ours',
        theirs: 'theirs',
        peers: ['serve-static'],
      },
    ],
  },
  {
    name: 'static-workers',
    start: startStaticWorkers,
    measures: [
      {
        id: 18,
        title: 'static 1 KiB, worker_processes auto, unpinned',
        unit: 'req/s',
        kind: 'http',
        path: '/1k.css',
        https: false,
        expect: { status: 200, bodyBytes: KIB },
        ours: 'ours',
        theirs: 'theirs',
        peers: [],
      },
    ],
  },
  {
    name: 'router',
    start: startRouter,
    measures: [
      {
        id: 3,
        title: 'cache hit 1 KiB',
        unit: 'req/s',
        kind: 'http',
        path: '/cache-1k.css',
        https: false,
        expect: { status: 200, bodyBytes: KIB },
        ours: 'ours',
        theirs: 'theirs',
        peers: [],
        baseline: { key: 'router-builtin', label: 'built-in VCL only', limitPct: 5 },
        cacheHit: true,
      },
      {
        id: 4,
        title: 'pass 1 KiB to a fast origin',
        unit: 'req/s',
        kind: 'http',
        path: '/pass-1k',
        https: false,
        expect: { status: 200, bodyBytes: KIB },
        ours: 'ours',
        theirs: 'theirs',
        peers: ['http-proxy'],
        baseline: { key: 'router-builtin', label: 'built-in VCL only', limitPct: 5 },
      },
      {
        id: 12,
        title: 'ESI page of three cached fragments',
        unit: 'req/s',
        kind: 'http',
        path: '/esi-page',
        https: false,
        expect: { status: 200, bodyBytes: 13 + 3 * 256 },
        ours: 'ours',
        theirs: 'theirs',
        peers: [],
        cacheHit: true,
      },
      {
        id: 13,
        title: 'gzip hit to a gzip client',
        unit: 'req/s',
        kind: 'http',
        path: '/gz-1k',
        https: false,
        headers: { 'Accept-Encoding': 'gzip' },
        expect: { status: 200, bodyBytes: GZIP_BYTES, headers: { 'Accept-Encoding': 'gzip' } },
        ours: 'ours',
        theirs: 'theirs',
        peers: [],
        cacheHit: true,
      },
      {
        id: 14,
        title: 'gzip object gunzipped for a plain client',
        unit: 'req/s',
        kind: 'http',
        path: '/gz-1k',
        https: false,
        expect: { status: 200, bodyBytes: KIB },
        ours: 'ours',
        theirs: 'theirs',
        peers: [],
        cacheHit: true,
      },
    ],
  },
  {
    name: 'router-h2',
    start: startRouterH2,
    measures: [
      {
        id: 11,
        title: 'h2c cache hit 1 KiB, h2load -c 10 -m 10',
        unit: 'req/s',
        kind: 'h2',
        path: '/cache-1k.css',
        https: false,
        expect: { status: 200, bodyBytes: KIB },
        ours: 'ours',
        theirs: 'theirs',
        peers: [],
        cacheHit: true,
      },
    ],
  },
  {
    name: 'router-workers',
    start: startRouterWorkers,
    measures: [
      {
        id: 15,
        title: 'cache hit 1 KiB, router --workers 2 vs varnishd default thread pools',
        unit: 'req/s',
        kind: 'http',
        path: '/cache-1k.css',
        https: false,
        expect: { status: 200, bodyBytes: KIB },
        ours: 'ours',
        theirs: 'theirs',
        peers: [],
        cacheHit: true,
      },
    ],
  },
  {
    name: 'tls',
    start: startTls,
    measures: [
      {
        id: 5,
        title: 'TLS keep-alive 1 KiB to a fast backend',
        unit: 'req/s',
        kind: 'http',
        path: '/tls-1k',
        https: true,
        expect: { status: 200, bodyBytes: KIB },
        ours: 'ours',
        theirs: 'theirs',
        peers: ['tls-pipe'],
      },
      {
        id: 6,
        title: 'new TLS handshakes (Connection: close)',
        unit: 'handshakes/s',
        kind: 'handshakes',
        path: '/',
        https: true,
        expect: { status: 200, bodyBytes: KIB },
        ours: 'ours',
        theirs: 'theirs',
        peers: ['tls-pipe'],
      },
    ],
  },
  {
    name: 'chain',
    start: startChains,
    measures: [
      {
        id: 7,
        title: 'full chain, https static 1 KiB',
        unit: 'req/s',
        kind: 'http',
        path: '/1k.css',
        https: true,
        expect: { status: 200, bodyBytes: KIB },
        ours: 'ours',
        theirs: 'theirs',
        peers: [],
      },
      {
        id: 8,
        title: 'full chain, websocket echo round trip',
        unit: 'round trips/s',
        kind: 'ws',
        path: '/echo',
        https: true,
        expect: { status: 200, bodyBytes: KIB },
        ours: 'ours',
        theirs: 'theirs',
        peers: [],
      },
    ],
  },
  {
    name: 'scale',
    start: startScale,
    measures: [
      {
        id: 17,
        title: '200 long-polling socket.io clients through 3 app instances',
        unit: 'round trips/s',
        kind: 'polling',
        // The probe's request: an instance's health through the chain's hash director.
        path: '/healthz',
        https: true,
        expect: { status: 200, bodyBytes: 3 },
        ours: 'ours',
        theirs: 'theirs',
        peers: [],
      },
    ],
  },
  {
    name: 'chain-h2',
    start: startChainsH2,
    measures: [
      {
        id: 16,
        title: 'h2 over TLS cache hit 1 KiB, h2load -c 10 -m 10',
        unit: 'req/s',
        kind: 'h2',
        path: '/cache-1k.css',
        https: true,
        expect: { status: 200, bodyBytes: KIB },
        ours: 'ours',
        theirs: 'theirs',
        peers: [],
        cacheHit: true,
      },
    ],
  },
]
