import { parseCommandLine, UsageError } from '@edgestack/common'

export type LoadGenerator = 'auto' | 'wrk' | 'autocannon'
export type OursFrom = 'auto' | 'config' | 'flags'

export interface BenchOptions {
  quick: boolean
  connections: number
  durationS: number
  /** Seconds of load before each measurement; 0 means a short request burst instead. */
  warmupS: number
  rounds: number
  /** Idle keep-alive connections held in scenario 9. */
  idle: number
  /** Scenario numbers to run; empty means all. */
  only: number[]
  /** Real programs to treat as absent (their scenarios show why they were skipped). */
  without: string[]
  loadGenerator: LoadGenerator
  oursFrom: OursFrom
  /** `debug =` of the bench's stunnel.conf, read by stunnel and tls-terminator alike (the article's 5). */
  stunnelDebug: number
  help: boolean
}

export const HELP = `Usage: npm run bench [-- OPTIONS]     (or: node bench/dist/run.js [OPTIONS])

Measures edgestack's daemons against stunnel, varnishd and nginx (and the Node peers) on
loopback, with the same config files, and writes bench/RESULTS.md and bench/results/*.json.

  --quick               a short run (1 round, 1 s each, 500 idle connections): < 60 s
                        (\`npm run bench --quick\` works too: npm passes it as npm_config_quick)
  -c, --connections N   concurrent connections of the load generator (default 64)
  -d, --duration S      seconds per measurement (default 10)
  --warmup S            seconds of load before every measurement (default 3)
  --rounds N            ours/theirs alternations; the median ratio is reported (default 3)
  --idle N              idle keep-alive connections in scenario 9 (default 10000)
  --only LIST           scenarios to run, e.g. 1,3,5
  --without LIST        treat these real programs as not installed: nginx,varnishd,stunnel,hitch
  --load-generator G    wrk, autocannon or auto (wrk when installed)
  --ours-from F         start our daemons from the config file, from flags, or auto
                        (config when the daemon's --help shows it reads that file)
  --stunnel-debug N     \`debug =\` level 0-7 of the stunnel.conf both terminators read
                        (default 5, the article's: both log every connection)
  -h, --help            show this help
`

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions {
  const { values } = parseCommandLine(argv, {
    options: {
      quick: { type: 'boolean' },
      connections: { type: 'string', short: 'c' },
      duration: { type: 'string', short: 'd' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      idle: { type: 'string' },
      only: { type: 'string' },
      without: { type: 'string' },
      'load-generator': { type: 'string' },
      'ours-from': { type: 'string' },
      'stunnel-debug': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  // `npm run bench --quick` never reaches argv: npm turns it into npm_config_quick=true.
  const quick = values.quick === true || isTrue(env.npm_config_quick)
  const defaults = quick
    ? { connections: 32, durationS: 1, warmupS: 0, rounds: 1, idle: 500 }
    : { connections: 64, durationS: 10, warmupS: 3, rounds: 3, idle: 10_000 }
  return {
    quick,
    connections: int('--connections', values.connections, defaults.connections, 1, 10_000),
    durationS: int('--duration', values.duration, defaults.durationS, 1, 3600),
    warmupS: int('--warmup', values.warmup, defaults.warmupS, 0, 600),
    rounds: int('--rounds', values.rounds, defaults.rounds, 1, 50),
    idle: int('--idle', values.idle, defaults.idle, 1, 100_000),
    only: values.only === undefined ? [] : values.only.split(',').map((s) => int('--only', s, 0, 1, 99)),
    without:
      values.without === undefined
        ? []
        : values.without.split(',').map((p) => oneOf('--without', p.trim(), ['nginx', 'varnishd', 'stunnel', 'hitch'] as const)),
    loadGenerator: oneOf('--load-generator', values['load-generator'], ['auto', 'wrk', 'autocannon'] as const),
    oursFrom: oneOf('--ours-from', values['ours-from'], ['auto', 'config', 'flags'] as const),
    stunnelDebug: int('--stunnel-debug', values['stunnel-debug'], 5, 0, 7),
    help: values.help === true,
  }
}

function isTrue(v: string | undefined): boolean {
  return v !== undefined && v !== '' && v !== 'false' && v !== '0'
}

function int(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback
  const n = Number(text.trim())
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag}: "${text}" is not an integer in ${min}-${max}`)
  return n
}

function oneOf<T extends string>(flag: string, text: string | undefined, allowed: readonly T[]): T {
  if (text === undefined) return allowed[0] as T
  if (!(allowed as readonly string[]).includes(text)) throw new UsageError(`${flag}: "${text}" is not one of ${allowed.join(', ')}`)
  return text as T
}
