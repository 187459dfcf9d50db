import { access, constants } from 'node:fs/promises'
import { join } from 'node:path'
import type { Ports, RenderedConfigs } from './configs.js'

/** The three layers that can be swapped for the real program. */
export const LAYERS = ['tls', 'router', 'static'] as const
export type Layer = (typeof LAYERS)[number]

export interface LayerContext {
  ports: Ports
  configs: RenderedConfigs
}

interface LayerSpec {
  /** Our daemon's package. */
  pkg: string
  /**
   * THE ADAPTER: how our daemon is started. Today from equivalent flags; when the daemon reads
   * the real format, replace the body by the commented line (one line per layer).
   */
  ours(c: LayerContext): string[]
  real: { program: string; debianPackage: string; args(c: LayerContext): string[]; needsPipe?: boolean }
}

const at = (port: number) => `127.0.0.1:${port}`

export const LAYER_SPECS: Readonly<Record<Layer, LayerSpec>> = Object.freeze({
  tls: {
    pkg: 'tls-terminator',
    // Reads stunnel.conf as stunnel does (the flags were: --accept --connect --cert --key).
    ours: (c) => [c.configs.stunnel],
    // stunnel.conf says `foreground = yes`, so stunnel stays attached and logs to stderr.
    real: { program: '/usr/bin/stunnel', debianPackage: 'stunnel4', args: (c) => [c.configs.stunnel] },
  },
  router: {
    pkg: 'caching-router',
    // caching-router reads varnishd's command line and its VCL: the same args as varnishd.
    ours: (c) => LAYER_SPECS.router.real.args(c),
    real: {
      program: '/usr/sbin/varnishd',
      debianPackage: 'varnish',
      // -F: foreground; -n: its working state in our temp folder, not /var/lib/varnish; as root
      // it drops to its own users, hence the world-readable temp folder (see renderConfigs).
      args: (c) => ['-F', '-n', join(c.configs.dir, 'varnish'), '-f', c.configs.vcl, '-a', at(c.ports.router), '-s', 'malloc,64m'],
    },
  },
  static: {
    pkg: 'static-server',
    // The same command line as nginx's. static-server treats `access_log /dev/stdout` as its
    // own stdout, so unlike nginx it needs no real pipe.
    ours: (c) => ['-p', `${c.configs.dir}/`, '-c', c.configs.nginx],
    // nginx.conf says `daemon off`, so the master stays attached; -p puts pid and temp files
    // in our temp folder.
    // `access_log /dev/stdout` is open(2)ed by nginx, which fails with ENXIO on the socket
    // pair Node gives a child as stdout: it needs a real pipe (see startProcess).
    real: {
      program: '/usr/sbin/nginx',
      debianPackage: 'nginx-light',
      args: (c) => ['-p', `${c.configs.dir}/`, '-c', c.configs.nginx],
      needsPipe: true,
    },
  },
})

/** One line naming the Debian package when a real program is not installed, else undefined. */
export function missingProgram(layer: Layer): Promise<string | undefined> {
  const { program, debianPackage } = LAYER_SPECS[layer].real
  return programMissing(program, debianPackage)
}

export async function programMissing(program: string, debianPackage: string): Promise<string | undefined> {
  try {
    await access(program, constants.X_OK)
    return undefined
  } catch {
    return `${program} is not installed: apt-get install ${debianPackage}`
  }
}

/** Parses `tls,router,static` (any subset; `all` for the three). */
export function parseLayers(list: string): Layer[] {
  if (list.trim() === 'all') return [...LAYERS]
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  for (const n of names) {
    if (!(LAYERS as readonly string[]).includes(n)) throw new Error(`unknown layer "${n}": use any of ${LAYERS.join(',')} or all`)
  }
  return [...new Set(names as Layer[])]
}
