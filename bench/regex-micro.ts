import { setFlagsFromString } from 'node:v8'

/**
 * The cost of a bounded regex on typical config patterns (issue 15): V8's backtracking engine
 * as it is, V8 with the linear-time fallback after excessive backtracking (what the daemons now
 * run: the flags are read when a RegExp is created, so the plain ones are created first), V8's
 * linear engine for every match (`l` flag), and our counting backtracker (vm.ts, the engine of
 * the risky shapes). One process, one core, bounded: `node bench/dist/regex-micro.js [ms]`.
 */
const PATTERNS: [string, string, string[]][] = [
  ['^/socket.io/', '', ['/socket.io/?EIO=4&transport=websocket', '/static/app.js', '/']],
  ['\\.(css|js|png)$', '', ['/static/app.js', '/img/logo.png', '/index.html', '/a/b/c/d/e/f/g/h']],
  ['\\.(js|css|img)$', '', ['/static/app.js?v=3', '/style.css', '/']],
  ['websocket', 'i', ['WebSocket', 'keep-alive, Upgrade', '']],
  ['^/static/.*\\.css$', 'i', ['/static/site.CSS', '/static/a/b.js', '/other']],
  ['^/api/v[0-9]+/users/([0-9]+)$', '', ['/api/v2/users/12345', '/api/v2/users/x', '/other']],
  ['^(?:[a-z]+/)*[a-z]+\\.(?:css|js)$', '', ['static/css/site.css', 'a/b/c/d.js', 'nope/x.png']],
]

const out = (line: string) => process.stdout.write(`${line}\n`)
const budgetMs = Number(process.argv[2] ?? 300)

function measure(test: (s: string) => boolean, inputs: string[]): number {
  let n = 0
  let sink = 0
  // Warm-up, then as many rounds as fit in the budget.
  for (let i = 0; i < 20_000; i++) sink += test(inputs[i % inputs.length] as string) ? 1 : 0
  const start = process.hrtime.bigint()
  const end = start + BigInt(budgetMs) * 1_000_000n
  let now = start
  while (now < end) {
    for (let i = 0; i < 1000; i++) sink += test(inputs[(n + i) % inputs.length] as string) ? 1 : 0
    n += 1000
    now = process.hrtime.bigint()
  }
  if (sink < 0) out(String(sink))
  return Number(now - start) / n
}

const plain = PATTERNS.map(([p, f]) => new RegExp(p, f))
setFlagsFromString('--enable-experimental-regexp-engine')
// V8's linear engine refuses caseless patterns (and large counted repeats).
const linear = PATTERNS.map(([p, f]) => {
  try {
    return new RegExp(p, `${f}l`)
  } catch {
    return undefined
  }
})
// Importing common sets the fallback flags (bounded-regex.ts), as in the daemons.
const { compileBoundedPcre } = await import('@edgestack/common')
// The counting engine's parts are common's internals, loaded from its build (not exported).
const internal = (file: string) => import(new URL(`../../packages/common/dist/src/regex/${file}`, import.meta.url).href)
const { parseRegex } = await internal('parse.js')
const { compileProgram } = await internal('program.js')
const { runProgram } = await internal('vm.js')
const limits = { matchLimit: 10_000, depthLimit: Number.POSITIVE_INFINITY }

out(`ns per match (inputs in turn), ${budgetMs} ms each, node ${process.version}`)
out('| pattern | V8 backtracking | ours (BoundedRegex: V8 + linear fallback, or the counting engine) | V8 linear `l` | counting engine |')
out('|---|---|---|---|---|')
PATTERNS.forEach(([p, f, inputs], k) => {
  const bounded = compileBoundedPcre(f === 'i' ? `(?i)${p}` : p)
  const prog = compileProgram(parseRegex(bounded.source), { ignoreCase: f === 'i', multiline: false, dotAll: false })
  const lin = linear[k]
  const cols = [
    measure((s) => (plain[k] as RegExp).test(s), inputs),
    measure((s) => bounded.test(s, limits), inputs),
    lin ? measure((s) => lin.test(s), inputs) : Number.NaN,
    measure((s) => runProgram(prog, s, 0, limits) !== null, inputs),
  ]
  const engine = bounded.risk ? `counting: ${bounded.risk}` : 'V8'
  out(`| \`${f === 'i' ? '(?i)' : ''}${p}\` (${engine}) | ${cols.map((c) => (Number.isNaN(c) ? 'refused' : c.toFixed(0))).join(' | ')} |`)
})
