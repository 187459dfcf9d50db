import type { CliAnswer } from './cli-session.js'
import { CLIS } from './cli-session.js'
import type { Backend, VclRegistry } from '../vcl/index.js'

interface Listed {
  /** `VCL.NAME`, as varnishd names a backend in its CLI. */
  full: string
  backend: Backend
}

function backendsOf(vcl: VclRegistry | undefined): Listed[] {
  const out: Listed[] = []
  for (const { name, program } of vcl?.loaded() ?? []) {
    for (const b of program.compiled.backends.values()) out.push({ full: `${name}.${b.name}`, backend: b })
  }
  return out
}

/**
 * varnishd's backend pattern (cache_director.c: backend_find): `NAME` or `VCL.NAME` in glob
 * form; a bare name looks in the active VCL only.
 */
function matching(vcl: VclRegistry | undefined, pattern: string | undefined): Listed[] {
  const all = backendsOf(vcl)
  if (pattern === undefined || pattern === '') return all.filter((l) => isActive(vcl, l))
  const dot = pattern.indexOf('.')
  const re = glob(dot === -1 ? pattern : pattern.slice(dot + 1))
  const vclRe = dot === -1 ? undefined : glob(pattern.slice(0, dot))
  return all.filter((l) => {
    const [v, n] = [l.full.slice(0, l.full.indexOf('.')), l.backend.name]
    return vclRe === undefined ? isActive(vcl, l) && re.test(n) : vclRe.test(v) && re.test(n)
  })
}

function isActive(vcl: VclRegistry | undefined, l: Listed): boolean {
  const active = vcl?.loaded().find((e) => e.active)
  return active !== undefined && l.full.startsWith(`${active.name}.`)
}

// An admin's glob, made once per CLI command (never on a request path).
function glob(p: string): RegExp {
  return new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`)
}

/** `backend.list [-p] [PATTERN]` in varnishd 7.1's table layout. */
export function backendList(vcl: VclRegistry | undefined, args: string[]): CliAnswer {
  const words = args.filter((a) => !a.startsWith('-'))
  const rows = matching(vcl, words[0] ?? '*.*').map(({ full, backend }) => {
    const admin = backend.admin === 'auto' ? (backend.probe ? 'probe' : 'healthy') : backend.admin
    const probe = backend.probe ? `${backend.probeHealthy() ? backend.probe.threshold : 0}/${backend.probe.window}` : '0/0'
    return [full, admin, probe, backend.healthy() ? 'healthy' : 'sick']
  })
  const width = Math.max(15, ...rows.map((r) => (r[0] as string).length + 1))
  let out = `${'Backend name'.padEnd(width)}Admin      Probe    Health     Last change\n`
  const when = new Date().toUTCString()
  for (const [name, admin, probe, health] of rows) out += `${(name as string).padEnd(width)}${(admin as string).padEnd(11)}${(probe as string).padEnd(9)}${(health as string).padEnd(11)}${when}\n`
  return [CLIS.OK, out]
}

/** `backend.set_health PATTERN auto|healthy|sick`. */
export function backendSetHealth(vcl: VclRegistry | undefined, args: string[]): CliAnswer {
  if (args.length < 2) return [CLIS.TOOFEW, 'Too few parameters\n']
  if (args.length > 2) return [CLIS.TOOMANY, 'Too many parameters\n']
  const state = (args[1] as string).toLowerCase()
  if (state !== 'auto' && state !== 'healthy' && state !== 'sick') return [CLIS.PARAM, `Invalid state ${args[1]}`]
  const found = matching(vcl, args[0])
  if (found.length === 0) return [CLIS.PARAM, 'No Backends matches']
  for (const { backend } of found) backend.admin = state
  return [CLIS.OK, '']
}
