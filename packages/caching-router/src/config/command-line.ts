import { deepFreeze, type HostPort, parseAddress, parseCommandLine, UsageError } from '@edgestack/common'
import { Params, parseSize } from '../params.js'
import { articleVcl, backendVcl } from './flags-vcl.js'
import type { CliModel, ListenSpec, VclSpec } from './model.js'

export const HELP = `Usage: caching-router [varnishd options] [edgestack options]
       caching-router stat -T ADDR [-S SECRETFILE]

A caching HTTP reverse proxy that reads varnishd's command line and behaves as varnishd:
with -f FILE it runs that VCL, with -b HOST:PORT the built-in VCL.

varnishd options:
  -a ADDR[,PROXY]         listen address, repeatable; PROXY: expect the PROXY protocol (default :80)
  -b HOST:PORT            the backend (varnishd's -b)
  -f FILE                 a VCL file (4.0/4.1, or 3.0 without a vcl line); SIGHUP re-reads it
  -C                      with -f: compile the VCL, print what it compiled into, exit
  -s malloc,SIZE          cache size, k/M/G suffixes (default malloc,256M)
  -p NAME=VALUE           a parameter, repeatable: default_ttl, default_grace, default_keep,
                          http_req_hdr_len, http_req_size, http_max_hdr, timeout_idle,
                          pipe_timeout, first_byte_timeout, between_bytes_timeout,
                          connect_timeout, shortlived
  -F                      stay in the foreground (always the case)
  -n DIR                  working directory name (accepted; nothing is written there)
  -P FILE                 write the process id to FILE
  -T ADDR                 admin CLI address, for varnishadm
  -S FILE                 admin CLI secret file
  -i IDENTITY             the name in Via (default: the host name)

edgestack extensions (the article's routing without a VCL file):
  --static-backend ADDR   URLs ending in .js, .css or .img go here (default 127.0.0.1:8081)
  --app-backend ADDR      everything else, and websockets and /socket.io/ piped (default 127.0.0.1:3000)
  --access-log-handling   append hit/miss/pass/pipe/synth to each varnishncsa line
  -h, --help              show this help

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
      s: { type: 'string', short: 's' },
      p: { type: 'string', short: 'p', multiple: true },
      F: { type: 'boolean', short: 'F' },
      n: { type: 'string', short: 'n' },
      P: { type: 'string', short: 'P' },
      T: { type: 'string', short: 'T' },
      S: { type: 'string', short: 'S' },
      i: { type: 'string', short: 'i' },
      'static-backend': { type: 'string' },
      'app-backend': { type: 'string' },
      'access-log-handling': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
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
  if (values.C && values.f === undefined) throw new UsageError('-C needs -f FILE')
  if (values.b !== undefined && (values['static-backend'] !== undefined || values['app-backend'] !== undefined)) {
    throw new UsageError('-b and --static-backend/--app-backend are exclusive')
  }
  let vcl: VclSpec
  if (values.f !== undefined) vcl = { kind: 'file', path: values.f }
  else if (values.b !== undefined) vcl = { kind: 'text', name: '<-b argument>', text: backendVcl(parseAddress(values.b, '127.0.0.1')) }
  else {
    const statics = parseAddress(values['static-backend'] ?? '127.0.0.1:8081', '127.0.0.1')
    const app = parseAddress(values['app-backend'] ?? '127.0.0.1:3000', '127.0.0.1')
    vcl = { kind: 'text', name: '<--static-backend/--app-backend>', text: articleVcl(statics, app) }
  }
  const adminAddress = values.T === undefined ? undefined : parseAddress(values.T, '127.0.0.1')
  return deepFreeze({
    listen: (values.a ?? [':80']).map(parseListen),
    vcl,
    storageBytes: parseStorage(values.s ?? 'malloc,256M'),
    params,
    identity: values.i,
    admin: adminAddress === undefined ? undefined : { address: adminAddress, secretFile: values.S },
    logHandling: values['access-log-handling'] ?? false,
    pidFile: values.P,
    help: values.help ?? false,
    check: values.C ?? false,
  })
}

/** `-a [name=]address[,PROXY|,HTTP]`, as varnishd 7 spells it. */
function parseListen(spec: string): ListenSpec {
  const parts = spec.split(',')
  let addr = parts[0] as string
  const eq = addr.indexOf('=')
  if (eq !== -1 && !addr.startsWith('[')) addr = addr.slice(eq + 1)
  let proxy = false
  for (const p of parts.slice(1)) {
    if (p === 'PROXY') proxy = true
    else if (p !== 'HTTP' && p !== 'HTTP/1') throw new UsageError(`-a ${spec}: unknown protocol "${p}" (PROXY or HTTP)`)
  }
  return { address: parseAddress(addr), proxy }
}

/** `-s malloc,SIZE` (or `-s name=malloc,SIZE`); the other stevedores are not ours. */
function parseStorage(spec: string): number {
  const body = spec.includes('=') ? spec.slice(spec.indexOf('=') + 1) : spec
  const [kind, size] = body.split(',')
  if (kind !== 'malloc') throw new UsageError(`-s ${spec}: only the malloc storage is supported`)
  if (size === undefined) return 256 * 1024 * 1024
  const n = parseSize(size)
  if (n === undefined || n <= 0) throw new UsageError(`-s ${spec}: invalid size "${size}"`)
  return n
}

/** `caching-router stat -T ADDR [-S FILE]`: varnishstat -1 over the admin CLI. */
export function parseStatCommandLine(argv: string[]): { address: HostPort; secretFile: string | undefined } {
  const { values } = parseCommandLine(argv, {
    options: { T: { type: 'string', short: 'T' }, S: { type: 'string', short: 'S' }, 1: { type: 'boolean', short: '1' } },
  })
  if (values.T === undefined) throw new UsageError('stat: -T ADDR (the router\'s admin CLI) is required')
  return { address: parseAddress(values.T, '127.0.0.1'), secretFile: values.S }
}
