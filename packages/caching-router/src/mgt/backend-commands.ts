import type { CliAnswer } from './cli-session.js'
import { CLIS } from './cli-session.js'
import { type Backend, Director, ShardDirector, type VclRegistry } from '../vcl/index.js'

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

function matchingDirectors(vcl: VclRegistry | undefined, pattern: string): { full: string; director: Director | ShardDirector }[] {
  const active = vcl?.loaded().find((e) => e.active)?.name
  const dot = pattern.indexOf('.')
  const re = glob(dot === -1 ? pattern : pattern.slice(dot + 1))
  const vclRe = dot === -1 ? undefined : glob(pattern.slice(0, dot))
  const out: { full: string; director: Director | ShardDirector }[] = []
  for (const { name, program } of vcl?.loaded() ?? []) {
    if (vclRe === undefined ? name !== active : !vclRe.test(name)) continue
    for (const d of program.compiled.directors.values()) {
      if ((d instanceof Director || d instanceof ShardDirector) && re.test(d.name)) out.push({ full: `${name}.${d.name}`, director: d })
    }
  }
  return out
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
  // vmod_directors' objects follow their VCL's backends (made in vcl_init, after them): the
  // Probe column counts healthy members over all (vdir_list, vmod_shard_list).
  for (const { full, director } of matchingDirectors(vcl, words[0] ?? '*.*')) {
    // The hash director has no health or list method (hash.c): listed as a backend without a probe.
    if (director instanceof Director && director.kind === 'hash') {
      rows.push([full, 'healthy', '0/0', 'healthy'])
      continue
    }
    const { healthy, total } = director.memberHealth()
    rows.push([full, 'probe', `${healthy}/${total}`, healthy > 0 ? 'healthy' : 'sick'])
  }
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
