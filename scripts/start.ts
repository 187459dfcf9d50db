#!/usr/bin/env node
// `npm start [-- --real tls,router,static] [--app-instances N]`: the article's chain on the dev
// ports, any layer swapped for the real stunnel / varnishd / nginx, all from the files in
// config/; the app on one instance or N sharing a Redis.
import { createLogger, handleSignals, parseCommandLine, runMain, StartupError, UsageError } from '@edgestack/common'
import type * as StackModule from '../e2e/stack.js'
import type * as LayersModule from '../e2e/layers.js'
import type * as ConfigsModule from '../e2e/configs.js'

// The launcher lives in e2e/ (the tests share it); its compiled path differs from its source
// path by one folder, so it is loaded at run time from the compiled tree.
const e2e = (file: string) => new URL(`../../e2e/dist/${file}`, import.meta.url).href

const HELP = `Usage: npm start [-- --real LAYERS] [--hitch] [--app-instances N]

Starts the article's chain on the dev ports: TLS on 8443, the router on 8080, static files on
8081, the app on 3000. Every layer reads its file in config/ (ports filled in).

  --real LAYERS   comma-separated layers to run as the real program instead of ours:
                  tls (stunnel), router (varnishd), static (nginx), or all
  --hitch         the TLS layer reads config/hitch.conf (ALPN h2, PROXY v2 to the router's
                  PROXY listener on 8086) instead of stunnel.conf; with --real tls it is hitch,
                  and the router (ours or varnishd) runs with -p feature=+http2
  --ports T,R,S,A other ports for the TLS, router, static and app layers (default
                  8443,8080,8081,3000); a fifth is the router's PROXY port (8086) for --hitch
                  and for --app-instances above 1
  --app-instances N
                  run N demo-app instances on the app port and the N-1 ports after it
                  (default 1). With N > 1, Debian's redis-server is started on a free
                  loopback port and the instances share rooms and broadcasts through it;
                  default.vcl's hash director keeps each client on one instance, keyed on
                  the browser's address: the TLS layer reads config/stunnel-proxy.conf
                  (PROXY v1 to the router's PROXY listener on 8086, -a ...,PROXY)
  -h, --help      show this help
`

const COLORS: Record<string, string> = { app: '32', static: '34', router: '35', tls: '36', redis: '31' }
const MAX_INSTANCES = 64

runMain('start', async () => {
  const { values } = parseCommandLine(process.argv.slice(2), {
    options: {
      real: { type: 'string' },
      ports: { type: 'string' },
      hitch: { type: 'boolean' },
      'app-instances': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    process.stdout.write(HELP)
    return
  }
  const { startStack, MissingProgramError, defaultTlsConfig } = (await import(e2e('stack.js'))) as typeof StackModule
  const { parseLayers, LAYER_SPECS, realProgram } = (await import(e2e('layers.js'))) as typeof LayersModule
  const { DEV_PORTS } = (await import(e2e('configs.js'))) as typeof ConfigsModule
  const real = (() => {
    try {
      return values.real === undefined ? [] : parseLayers(values.real)
    } catch (err) {
      throw new UsageError(`--real: ${(err as Error).message}`)
    }
  })()
  const ports = values.ports === undefined ? { ...DEV_PORTS } : parsePorts(values.ports)
  const appInstances = parseInstances(values['app-instances'] ?? '1')
  if (ports.app + appInstances - 1 > 65535) throw new UsageError(`--app-instances: ports ${ports.app}..${ports.app + appInstances - 1} go past 65535`)
  const logger = createLogger({ name: 'start' })

  const echo = (name: string, chunk: string) => {
    const tag = `[${name.padEnd(6)}]`
    const color = COLORS[name.replace(/\d+$/, '')] ?? '0'
    const label = process.stdout.isTTY ? `\x1b[${color}m${tag}\x1b[0m ` : `${tag} `
    process.stdout.write(label + chunk.replace(/\n(?=.)/g, `\n${label}`))
  }
  const tlsConfig = values.hitch ? 'hitch' : defaultTlsConfig(appInstances)
  // EDGESTACK_REDIS_SERVER: another redis-server binary than Debian's /usr/bin/redis-server.
  const redisServer = process.env.EDGESTACK_REDIS_SERVER || undefined
  const stack = await startStack({ real, ports: { proxy: DEV_PORTS.proxy, ...ports }, echo, tlsConfig, appInstances, redisServer }).catch((err: Error) => {
    // The launcher stopped whatever had started; the program's own words are already shown above.
    throw new StartupError(err instanceof MissingProgramError ? err.message : `could not start the stack: ${err.message.split('\n')[0]}`)
  })
  const which = (['tls', 'router', 'static'] as const)
    .map((l) => `${l}: ${stack.real.has(l) ? realProgram(l, tlsConfig).program : `our ${LAYER_SPECS[l].pkg}`}`)
    .join(', ')
  const apps =
    stack.apps.length > 1
      ? `  ${stack.apps.length} app instances on ports ${stack.apps.map((a) => a.port).join(', ')}, sharing redis on 127.0.0.1:${stack.redis?.port}\n`
      : ''
  process.stdout.write(
    `\nedgestack is up (${which})\n${apps}` +
      `  open ${stack.httpsUrl}/ (trust ${stack.caCertFile}), or ${stack.httpUrl}/\n` +
      `  config files used: ${stack.configs.dir}/\n  Ctrl-C stops everything.\n\n`,
  )
  let stopping = false
  const close = () => {
    stopping = true
    return stack.stop()
  }
  // Ctrl-C reaches only this process (the layers run in their own process groups): stop them all.
  handleSignals({ close }, { logger })
  // One layer gone means the chain is broken: stop the rest (what concurrently's killOthersOn did).
  for (const d of stack.daemons()) {
    d.child.once('exit', (code, signal) => {
      if (stopping) return
      logger.error(`${d.name} exited (${code ?? signal}): stopping the others`)
      process.exitCode = 1
      void close()
    })
  }
})

function parseInstances(text: string): number {
  const n = Number(text)
  if (!/^\d+$/.test(text) || n < 1 || n > MAX_INSTANCES) {
    throw new UsageError(`--app-instances: expected a whole number from 1 to ${MAX_INSTANCES}, got "${text}"`)
  }
  return n
}

function parsePorts(list: string): { tls: number; router: number; static: number; app: number; proxy?: number } {
  const ports = list.split(',').map((p) => Number(p.trim()))
  if ((ports.length !== 4 && ports.length !== 5) || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    throw new UsageError(`--ports: expected four ports TLS,ROUTER,STATIC,APP (and the router's PROXY port), got "${list}"`)
  }
  const [tls, router, stat, app, proxy] = ports as [number, number, number, number, number | undefined]
  return { tls, router, static: stat, app, ...(proxy === undefined ? {} : { proxy }) }
}
