import { availableParallelism } from 'node:os'
import { deepFreeze, formatAddress, type HostPort, parseAddress, parseCommandLine, parseDrainDelay, parseLogFormat, UsageError } from '@edgestack/common'
import { Params, parseSize } from '../params.js'
import { articleVcl, backendVcl } from './flags-vcl.js'
import { compileNcsaFormat } from '../ncsa-format.js'
import type { CliModel, ListenSpec, VclSpec } from './model.js'

export const HELP = `Usage: caching-router [varnishd options] [edgestack options]
       caching-router stat -T ADDR [-S SECRETFILE] [-1 | -j]

A caching HTTP reverse proxy that reads varnishd's command line and behaves as varnishd:
with -f FILE it runs that VCL, with -b HOST:PORT the built-in VCL.

varnishd options:
  -a ADDR[,PROXY]         listen address, repeatable; PROXY: expect the PROXY protocol (default :80)
  -b HOST:PORT            the backend (varnishd's -b)
  -f FILE                 a VCL file (4.0/4.1, or 3.0 without a vcl line); SIGHUP re-reads it
  -C                      with -f or -b: compile the VCL, print what it compiled into, exit
  -s malloc,SIZE          cache size, k/M/G suffixes (default malloc,256M)
  -p NAME=VALUE           a parameter, repeatable: default_ttl, default_grace, default_keep,
                          http_req_hdr_len, http_req_size, http_max_hdr, timeout_idle,
                          pipe_timeout, first_byte_timeout, between_bytes_timeout,
                          connect_timeout, shortlived, pcre2_match_limit,
                          pcre2_depth_limit, pcre2_jit_compilation; accepted without
                          effect (README): workspace_client, workspace_backend,
                          thread_pool*, feature=default
  -F                      stay in the foreground (always the case)
  -n DIR                  working directory: the shared-memory log index and _.secret go there
  -d                      debug mode: CLI on stdin/stdout, serve after 'start', exit when stdin closes
  -M 'HOST PORT'          reverse CLI: connect to a manager (varnishtest) and take commands
  -l SIZE                 size of the shared-memory log (default 80M)
  -W WAITER, -h HASH      accepted: varnishd's internals, invisible to clients
  -P FILE                 write the process id to FILE
  -T ADDR                 admin CLI address, for varnishadm
  -S FILE                 admin CLI secret file
  -i IDENTITY             the name in Via (default: the host name)

edgestack extensions (the article's routing without a VCL file):
  --static-backend ADDR   URLs ending in .js, .css or .img go here (default 127.0.0.1:8081)
  --app-backend ADDR      everything else, and websockets and /socket.io/ piped (default 127.0.0.1:3000)
  --access-log-handling   append hit/miss/pass/pipe/synth to each varnishncsa line
  --access-log-format FMT the access line in varnishncsa's -F FORMAT (%h %t "%r" %s %b %{X}i ...)
  --access-log-json       varnishncsa's -j: values escaped for JSON, absent ones empty
  --metrics ADDR          serve /metrics (prometheus_varnish_exporter's names), /healthz, /readyz
  --drain-delay SEC       with --metrics: on a stop signal /readyz says 503 at once, and the
                          listeners keep accepting SEC seconds more before the drain (default 0)
  --log-format text|json  the router's own log lines as text or JSON objects, request ids
                          (xid) as fields (default text)
  --workers N|auto        N worker threads on the same listening sockets, one cache across
                          them (auto: one a CPU; default 1)
  --brotli                keep a brotli copy beside each gzip object and send it to clients
                          whose Accept-Encoding takes br (varnishd has no brotli)
  --help                  show this help (-h is varnishd's hash algorithm)

Without -b or -f the article's routing is used, with the defaults above.
`

/** varnishd's flags (and ours), to a model; every problem is a UsageError (exit 2). */
export function parseRouterCommandLine(argv: string[]): CliModel {
  const { values } = parseCommandLine(argv, {
    options: {
      a: { type: 'string', short: 'a', multiple: true },
      b: { type: 'string', short: 'b' },
      f: { type: 'string', short: 'f' },
      C: { type: 'boolean', short: 'C' },
      s: { type: 'string', short: 's', multiple: true },
      p: { type: 'string', short: 'p', multiple: true },
      F: { type: 'boolean', short: 'F' },
      n: { type: 'string', short: 'n' },
      P: { type: 'string', short: 'P' },
      T: { type: 'string', short: 'T' },
      S: { type: 'string', short: 'S' },
      i: { type: 'string', short: 'i' },
      d: { type: 'boolean', short: 'd', multiple: true },
      // The waiter (-W) and the hash (-h) are varnishd's internals, invisible to clients;
      // Node's event loop and our store take their place (README: accepted, no effect).
      W: { type: 'string', short: 'W' },
      h: { type: 'string', short: 'h' },
      M: { type: 'string', short: 'M' },
      l: { type: 'string', short: 'l' },
      'static-backend': { type: 'string' },
      'app-backend': { type: 'string' },
      'access-log-handling': { type: 'boolean' },
      'access-log-format': { type: 'string' },
      'access-log-json': { type: 'boolean' },
      metrics: { type: 'string' },
      'drain-delay': { type: 'string' },
      workers: { type: 'string' },
      brotli: { type: 'boolean' },
      'log-format': { type: 'string' },
      help: { type: 'boolean' },
    },
  })
  // Checked here, so a bad -p stops the command line; the router applies them in order.
  const checked = new Params()
  const params: (readonly [string, string])[] = []
  for (const p of values.p ?? []) {
    const eq = p.indexOf('=')
    if (eq === -1) throw new UsageError(`-p ${p}: expected name=value`)
    checked.set(p.slice(0, eq), p.slice(eq + 1))
    params.push([p.slice(0, eq), p.slice(eq + 1)] as const)
  }
  if (values.f !== undefined && (values.b !== undefined || values['static-backend'] !== undefined || values['app-backend'] !== undefined)) {
    // varnishd: "Only one of -b or -f options"
    throw new UsageError('Only one of -b or -f options (or --static-backend/--app-backend)')
  }
  // varnishd: -C compiles -f's file or the VCL -b stands for.
  if (values.C && values.f === undefined && values.b === undefined) throw new UsageError('-C needs -f FILE or -b HOST:PORT')
  if (values.b !== undefined && (values['static-backend'] !== undefined || values['app-backend'] !== undefined)) {
    throw new UsageError('-b and --static-backend/--app-backend are exclusive')
  }
  let vcl: VclSpec
  if (values.f !== undefined) vcl = { kind: 'file', path: values.f }
  else if (values.b !== undefined) vcl = { kind: 'text', name: '<-b argument>', text: backendVcl(backendArg(values.b)) }
  else {
    const statics = parseAddress(values['static-backend'] ?? '127.0.0.1:8081', '127.0.0.1')
    const app = parseAddress(values['app-backend'] ?? '127.0.0.1:3000', '127.0.0.1')
    vcl = { kind: 'text', name: '<--static-backend/--app-backend>', text: articleVcl(statics, app) }
  }
  const adminAddress = values.T === undefined ? undefined : parseAddress(values.T, '127.0.0.1')
  return deepFreeze({
    listen: checkDuplicates((values.a ?? [':80']).map(parseListen)),
    vcl,
    storageBytes: storageBytes(values.s ?? ['malloc,256M']),
    params,
    identity: values.i,
    admin: adminAddress === undefined ? undefined : { address: adminAddress, secretFile: values.S },
    logHandling: values['access-log-handling'] ?? false,
    accessFormat: accessFormat(values['access-log-format'], values['access-log-json'] ?? false, values['access-log-handling'] ?? false),
    pidFile: values.P,
    metrics: values.metrics === undefined ? undefined : parseAddress(values.metrics, '127.0.0.1'),
    drainDelayMs: parseDrainDelay(values['drain-delay'], values.metrics !== undefined),
    workers: parseWorkers(values.workers),
    brotli: values.brotli ?? false,
    logFormat: parseLogFormat(values['log-format']),
    help: values.help ?? false,
    check: values.C ?? false,
    debug: (values.d?.length ?? 0) > 0,
    reverseCli: values.M === undefined ? undefined : parseReverse(values.M),
    workdir: values.n,
    logBytes: parseLogSize(values.l ?? '80M'),
    backendGiven: values.b !== undefined || values['static-backend'] !== undefined || values['app-backend'] !== undefined,
  })
}

/**
 * `-a [name=]address[,PROXY|,HTTP][,mode=OCTAL]`, checked as varnishd 7.1's MAC_Arg
 * (mgt_acceptor.c) checks it, in its words: an address starting with `/` is a Unix-domain
 * socket, the only kind that takes `k=v` sub-args. `user=` and `group=` (a chown, which
 * needs root) are refused.
 */
function parseListen(spec: string): ListenSpec {
  const parts = spec.split(',')
  let addr = parts[0] as string
  let name: string | undefined
  const eq = addr.indexOf('=')
  if (eq !== -1 && !addr.startsWith('[') && !addr.startsWith('/')) {
    name = addr.slice(0, eq)
    addr = addr.slice(eq + 1)
  }
  const unix = addr.startsWith('/')
  if (!unix && addr.includes('/')) throw new UsageError(`Unix domain socket addresses must be absolute paths in -a (${addr})`)
  // sockaddr_un's sun_path: 108 bytes with the NUL.
  if (unix && Buffer.byteLength(addr) > 107) throw new UsageError(`Got no socket(s) for ${addr} (path too long)`)
  let protocol: string | undefined
  let mode: number | undefined
  for (const p of parts.slice(1)) {
    const at = p.indexOf('=')
    if (at === -1) {
      if (protocol !== undefined) throw new UsageError(`Too many protocol sub-args in -a (${p})`)
      if (p !== 'PROXY' && p !== 'HTTP' && p !== 'HTTP/1') throw new UsageError(`Unknown protocol '${p}'`)
      protocol = p
      continue
    }
    if (!unix) throw new UsageError(`Invalid sub-arg ${p} for IP addresses in -a`)
    const key = p.slice(0, at)
    const val = p.slice(at + 1)
    if (key === 'mode') {
      if (mode !== undefined) throw new UsageError('Too many mode sub-args in -a')
      mode = parseMode(val)
    } else if (key === 'user' || key === 'group') {
      throw new UsageError(`-a ${spec}: ${key}= is not supported (the socket is the router's user's)`)
    } else throw new UsageError(`Invalid sub-arg ${p} in -a`)
  }
  return { address: unix ? { path: addr, mode } : parseAddress(addr), proxy: protocol === 'PROXY', name }
}

/** `mode=` as strtol(val, &end, 8) reads it, with MAC_Arg's checks. */
function parseMode(val: string): number {
  if (val === '') throw new UsageError('Empty mode sub-arg in -a')
  if (!/^[ \t]*[+-]?[0-7]+$/.test(val)) throw new UsageError(`Invalid mode sub-arg ${val} in -a`)
  const m = Number.parseInt(val.trim(), 8)
  // strtol's ERANGE: beyond a long.
  if (!Number.isSafeInteger(m)) throw new UsageError(`Cannot parse mode sub-arg ${val} in -a: Numerical result out of range`)
  if (m <= 0 || m > 0o777) throw new UsageError(`Mode sub-arg ${val} out of range in -a`)
  return m
}

/** Two -a for one address: varnishd refuses it before binding (a second bind would fail). */
function checkDuplicates(listen: ListenSpec[]): ListenSpec[] {
  const seen = new Map<string, string>()
  for (const l of listen) {
    const a = l.address
    if ('host' in a && a.port === 0) continue
    const key = 'path' in a ? a.path : formatAddress(a)
    const before = seen.get(key)
    if (before !== undefined) throw new UsageError(`-a arguments ${before} and ${key} have same address`)
    seen.set(key, key)
  }
  return listen
}

/** `-b HOST[:PORT]`, `-b /path` (a Unix socket) or `-b none` (varnishd takes `None` too). */
function backendArg(spec: string): HostPort | 'none' | { path: string } {
  if (spec.toLowerCase() === 'none') return 'none'
  if (spec.startsWith('/')) {
    if (/["\\\r\n]/.test(spec)) throw new UsageError(`-b ${spec}: not a usable socket path`)
    return { path: spec }
  }
  return parseAddress(spec, '127.0.0.1')
}

/** `-M 'HOST PORT'` (varnishd also takes HOST:PORT). */
function parseReverse(spec: string): HostPort {
  const parts = spec.trim().split(/\s+/)
  return parts.length === 2 ? parseAddress(`${parts[0]}:${parts[1]}`) : parseAddress(spec)
}

/** `-l SIZE`: varnishd's vsl_space, at least 1M (a 2m from varnishtest is 2 MiB). */
function parseLogSize(spec: string): number {
  const n = parseSize(spec.split(',')[0] as string)
  if (n === undefined || n < 1024 * 1024) throw new UsageError(`-l ${spec}: expected a size of at least 1M`)
  return n
}

/**
 * `-s [NAME=]malloc|default[,SIZE]`, repeatable: varnishd spreads objects over its stores, so
 * ours is one store of their summed size. `default` is malloc on Linux. `Transient=` sizes
 * varnishd's store of short-lived and uncacheable objects, which ours keeps in the same store
 * (README: differences). The other stevedores (file, umem) are refused.
 */
function storageBytes(specs: string[]): number {
  let total = 0
  for (const spec of specs) {
    const eq = spec.indexOf('=')
    const name = eq === -1 ? undefined : spec.slice(0, eq)
    const [kind, size] = spec.slice(eq + 1).split(',')
    if (kind !== 'malloc' && kind !== 'default') throw new UsageError(`-s ${spec}: only the malloc storage is supported`)
    const n = size === undefined ? 256 * 1024 * 1024 : parseSize(size)
    if (n === undefined || n <= 0) throw new UsageError(`-s ${spec}: invalid size "${size}"`)
    if (name !== 'Transient') total += n
  }
  return total || 256 * 1024 * 1024
}

/** `caching-router stat -T ADDR [-S FILE] [-1 | -j]`: varnishstat -1 (the default) or -j over the admin CLI. */
export function parseStatCommandLine(argv: string[]): { address: HostPort; secretFile: string | undefined; json: boolean } {
  const { values } = parseCommandLine(argv, {
    options: {
      T: { type: 'string', short: 'T' },
      S: { type: 'string', short: 'S' },
      1: { type: 'boolean', short: '1' },
      j: { type: 'boolean', short: 'j' },
    },
  })
  if (values[1] && values.j) throw new UsageError('stat: -1 and -j are two output formats: give one')
  if (values.T === undefined) throw new UsageError('stat: -T ADDR (the router\'s admin CLI) is required')
  return { address: parseAddress(values.T, '127.0.0.1'), secretFile: values.S, json: values.j ?? false }
}

/** `--workers N|auto`: how many worker threads serve (README "Workers"). */
function parseWorkers(value: string | undefined): number {
  if (value === undefined) return 1
  if (value === 'auto') return availableParallelism()
  if (!/^[1-9][0-9]{0,2}$/.test(value)) throw new UsageError(`--workers ${value}: expected a number from 1 to 999, or auto`)
  return Number(value)
}

/**
 * `--access-log-format` / `--access-log-json`: varnishncsa's -F and -j, checked here (compiled
 * once and thrown away) so that a bad format stops start-up in varnishncsa's words.
 */
function accessFormat(format: string | undefined, json: boolean, handling: boolean): CliModel['accessFormat'] {
  if (format === undefined) {
    // varnishncsa: "-j: ... Use this option with -F": its default format is not JSON.
    if (json) throw new UsageError('--access-log-json needs --access-log-format (varnishncsa -j is for a -F format)')
    return undefined
  }
  if (handling) throw new UsageError('--access-log-handling is for the default format: put %{Varnish:handling}x in --access-log-format')
  compileNcsaFormat(format, json)
  return { format, json }
}
