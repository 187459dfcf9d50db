import { readFile } from 'node:fs/promises'
import type { Programs } from './groups.js'
import { startCachingRouter, startVarnishd } from './layers/router.js'
import { type BenchContext, type Program, type Server, startNodePeer } from './layers/server.js'
import { startNginx, startStaticServer } from './layers/static.js'
import { startStunnel, startTlsTerminator } from './layers/tls.js'
import { holdIdle } from './load/clients.js'
import { probe } from './load/probe.js'
import { type MeasureEnv, type Row, type Side, sumPeak } from './measure.js'

interface IdlePair {
  layer: string
  program: Program
  path: string
  tls: boolean
  ours(ctx: BenchContext, originPort: number): Promise<Server>
  theirs(ctx: BenchContext, program: string, originPort: number): Promise<Server>
}

const PAIRS: IdlePair[] = [
  {
    layer: 'static-server vs nginx',
    program: 'nginx',
    path: '/1k.css',
    tls: false,
    ours: (ctx, o) => startStaticServer(ctx, o),
    theirs: (ctx, p, o) => startNginx(ctx, p, o),
  },
  {
    layer: 'caching-router vs varnishd',
    program: 'varnishd',
    path: '/cache-1k.css',
    tls: false,
    ours: (ctx, o) => startCachingRouter(ctx, { nginxPort: o, nodePort: o }),
    theirs: (ctx, p, o) => startVarnishd(ctx, p, { nginxPort: o, nodePort: o }),
  },
  {
    layer: 'tls-terminator vs stunnel',
    program: 'stunnel',
    path: '/',
    tls: true,
    ours: (ctx, o) => startTlsTerminator(ctx, o),
    theirs: (ctx, p, o) => startStunnel(ctx, p, o),
  },
]

/** The soft limit on open files: a TLS terminator needs two per client connection. */
async function openFileLimit(): Promise<number> {
  const limits = await readFile('/proc/self/limits', 'utf8').catch(() => '')
  const line = limits.split('\n').find((l) => l.startsWith('Max open files'))
  const n = Number(line?.split(/\s+/)[3])
  return Number.isFinite(n) && n > 0 ? n : 1024
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Scenario 9: each daemon alone, fresh, holding N idle keep-alive connections that have each
 * served one request; the growth of its resident memory (all its processes) per connection.
 */
export async function runIdle(env: MeasureEnv, programs: Programs): Promise<Row[]> {
  const { ctx, opts, progress } = env
  const rows: Row[] = []
  const nofile = await openFileLimit()
  const timeoutS = opts.quick ? 15 : 120
  const origin = await startNodePeer(ctx, 'fast origin', 'origin', []).catch((err: Error) => err)
  if (origin instanceof Error) {
    return [{ id: 9, title: 'idle keep-alive connections', unit: 'KiB/conn', left: failed('ours', origin.message), ratio: null, notes: [] }]
  }
  try {
    for (const pair of PAIRS) {
      // Each connection costs the client one descriptor and a TLS terminator two (client + backend).
      const cap = Math.floor((nofile - 200) / (pair.tls ? 2 : 1))
      const count = Math.min(opts.idle, cap)
      const notes = count < opts.idle ? [`${count} connections, not ${opts.idle}: the open-files limit is ${nofile}`] : []
      const measureOne = async (name: string, start: () => Promise<Server>): Promise<Side> => {
        progress.measure(`scenario 9 idle connections: ${name}, ${count} connections`)
        let server: Server | undefined
        try {
          server = await start()
          const url = `${pair.tls ? 'https' : 'http'}://127.0.0.1:${server.port}${pair.path}`
          const wrong = await probe(url, { status: 200, bodyBytes: 1024 })
          if (wrong) return failed(server.name, `${server.name} ${wrong}`)
          await sleep(opts.quick ? 100 : 1000)
          const base = await rss(server)
          const args = ['--port', String(server.port), '--count', String(count), '--path', pair.path]
          const hold = await holdIdle(pair.tls ? [...args, '--tls'] : args, ctx.loadCpus, timeoutS)
          try {
            await sleep(opts.quick ? 200 : 2000)
            const held = await rss(server)
            const peak = await sumPeak(server)
            notes.push(`${server.name}: held ${hold.open} of ${count} (${hold.failed} failed), RSS ${mib(base)} -> ${mib(held)} MiB`)
            if (hold.open === 0) return failed(server.name, 'no connection could be held')
            // A garbage-collected heap can shrink while sockets are added: below a couple of MiB the
            // difference says nothing, and the note asks for more connections instead.
            if (held <= base) return failed(server.name, `RSS did not grow (${mib(base)} -> ${mib(held)} MiB): raise --idle`)
            if (held - base < 2048) notes.push(`${server.name}: RSS grew less than 2 MiB, below what this can resolve (raise --idle)`)
            const perConn = (held - base) / hold.open
            return {
              name: server.name,
              role: '',
              value: perConn,
              p50Ms: null,
              p99Ms: null,
              samples: [perConn],
              peakRssKiB: peak,
              ...(server.startedFrom ? { startedFrom: server.startedFrom } : {}),
            }
          } finally {
            await hold.release()
          }
        } catch (err) {
          return failed(name, (err as Error).message.split('\n').slice(0, 4).join(' | '))
        } finally {
          await server?.stop()
        }
      }
      const oursSide = await measureOne(pair.layer.split(' vs ')[0] as string, () => pair.ours(ctx, origin.port))
      oursSide.role = 'ours'
      const path = programs.path[pair.program]
      const theirsSide = path
        ? await measureOne(pair.program, () => pair.theirs(ctx, path, origin.port))
        : { ...failed(pair.program, programs.why(pair.program)), absent: true }
      theirsSide.role = 'theirs'
      if (oursSide.startedFrom === 'flags') notes.unshift(`${oursSide.name} started from flags: it does not read the shared config file yet`)
      rows.push({
        id: 9,
        title: `${count} idle keep-alive connections: ${pair.layer}`,
        unit: 'KiB/conn',
        left: oursSide,
        right: theirsSide,
        ratio:
          oursSide.value !== null && theirsSide.value !== null && theirsSide.value > 0 ? oursSide.value / theirsSide.value : null,
        notes,
      })
    }
  } finally {
    await origin.stop()
  }
  return rows
}

export function idleSkipped(reason: string): Row {
  return { id: 9, title: 'idle keep-alive connections', unit: 'KiB/conn', left: failed('ours', reason), ratio: null, notes: [] }
}

function failed(name: string, problem: string): Side {
  return { name, role: '', value: null, p50Ms: null, p99Ms: null, samples: [], problem }
}

async function rss(s: Server): Promise<number> {
  let total = 0
  for (const p of s.procs) total += await p.rssKiB()
  return total
}

function mib(kib: number): string {
  return (kib / 1024).toFixed(1)
}
