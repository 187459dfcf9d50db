import { access, constants } from 'node:fs/promises'
import { join } from 'node:path'
import type { Ports, RenderedConfigs } from './configs.js'

/** The three layers that can be swapped for the real program. */
export const LAYERS = ['tls', 'router', 'static'] as const
export type Layer = (typeof LAYERS)[number]

export interface LayerContext {
  ports: Ports
  configs: RenderedConfigs
  /**
   * Which TLS program's file the chain runs on: config/stunnel.conf (stunnel or ours), or
   * config/hitch.conf (hitch or ours), whose PROXY v2 goes to the router's PROXY listener and
   * whose ALPN offers h2, so the router is started as the official varnish image starts
   * varnishd: with `-p feature=+http2`. Or config/stunnel-proxy.conf (stunnel or ours), whose
   * PROXY v1 goes to the same PROXY listener: the sticky setup of several app instances, where
   * the hash director must see the browser's address, not the terminator's.
   */
  tlsConfig: TlsConfig
}

export type TlsConfig = 'stunnel' | 'stunnel-proxy' | 'hitch'

interface RealProgram {
  program: string
  debianPackage: string
  args(c: LayerContext): string[]
  needsPipe?: boolean
}

/** hitch, the TLS layer's second real program: `hitch --config=hitch.conf`, in the foreground (hitch's default). */
export const HITCH: RealProgram = {
  program: '/usr/sbin/hitch',
  debianPackage: 'hitch',
  args: (c) => [`--config=${c.configs.hitch}`],
}

/** The real program of a layer in this chain: stunnel or hitch for TLS, by the file. */
export function realProgram(layer: Layer, tlsConfig: TlsConfig): RealProgram {
  return layer === 'tls' && tlsConfig === 'hitch' ? HITCH : LAYER_SPECS[layer].real
}

/** The router's PROXY listener for a TLS layer that speaks PROXY, and h2 in hitch's chain (see LayerContext.tlsConfig), ours or varnishd. */
function routerExtras(c: LayerContext): string[] {
  if (c.tlsConfig === 'stunnel') return []
  const proxy = ['-a', `${at(c.ports.proxy as number)},PROXY`]
  return c.tlsConfig === 'hitch' ? [...proxy, '-p', 'feature=+http2'] : proxy
}

/** The TLS layer's file in this chain. */
const tlsFile = (c: LayerContext) => (c.tlsConfig === 'stunnel-proxy' ? c.configs.stunnelProxy : c.configs.stunnel)

interface LayerSpec {
  /** Our daemon's package. */
  pkg: string
  /**
   * THE ADAPTER: how our daemon is started. Today from equivalent flags; when the daemon reads
   * the real format, replace the body by the commented line (one line per layer).
   */
  ours(c: LayerContext): string[]
  real: RealProgram
}

const at = (port: number) => `127.0.0.1:${port}`

export const LAYER_SPECS: Readonly<Record<Layer, LayerSpec>> = Object.freeze({
  tls: {
    pkg: 'tls-terminator',
    // Reads stunnel.conf as stunnel does (the flags were: --accept --connect --cert --key).
    // With hitch.conf, as hitch is started: --config=FILE.
    ours: (c) => (c.tlsConfig === 'hitch' ? [`--config=${c.configs.hitch}`] : [tlsFile(c)]),
    // stunnel.conf says `foreground = yes`, so stunnel stays attached and logs to stderr.
    real: { program: '/usr/bin/stunnel', debianPackage: 'stunnel4', args: (c) => [tlsFile(c)] },
  },
  router: {
    pkg: 'caching-router',
    // caching-router reads varnishd's command line and its VCL: the same args as varnishd.
    ours: (c) => [...routerArgs(c), ...routerExtras(c)],
    real: {
      program: '/usr/sbin/varnishd',
      debianPackage: 'varnish',
      // -F: foreground; -n: its working state in our temp folder, not /var/lib/varnish; as root
      // it drops to its own users, hence the world-readable temp folder (see renderConfigs).
      args: (c) => [...routerArgs(c), ...routerExtras(c)],
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

const routerArgs = (c: LayerContext) => ['-F', '-n', join(c.configs.dir, 'varnish'), '-f', c.configs.vcl, '-a', at(c.ports.router), '-s', 'malloc,64m']

/** One line naming the Debian package when a real program is not installed, else undefined. */
export function missingProgram(layer: Layer, tlsConfig: TlsConfig = 'stunnel'): Promise<string | undefined> {
  const { program, debianPackage } = realProgram(layer, tlsConfig)
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
