import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { isAbsolute, join } from 'node:path'
import { REPO } from './processes.js'

/** The four listening ports of a stack; the files in config/ carry the dev ones. */
export interface Ports {
  tls: number
  router: number
  static: number
  app: number
  /** The router's PROXY listener, which hitch.conf's backend names (hitch's chains only). */
  proxy?: number
}

export const DEV_PORTS: Readonly<Ports> = Object.freeze({ tls: 8443, router: 8080, static: 8081, app: 3000, proxy: 8086 })

export const CONFIG_DIR = `${REPO}config`

/** Paths of the generated copies, all inside one temporary folder. */
export interface RenderedConfigs {
  dir: string
  stunnel: string
  /** config/stunnel-proxy.conf: stunnel.conf speaking PROXY v1 to the router's PROXY listener (`tlsConfig: 'stunnel-proxy'`). */
  stunnelProxy: string
  /** config/hitch.conf: the TLS layer's file when the chain is hitch's (`tlsConfig: 'hitch'`). */
  hitch: string
  vcl: string
  nginx: string
  /** nginx.conf's document root, absolute: our static-server's --root until it reads the file. */
  root: string
}

interface Edit {
  what: string
  pattern: RegExp
  replace: (...groups: string[]) => string
}

/**
 * Copies config/stunnel.conf, stunnel-proxy.conf, hitch.conf, default.vcl, nginx.conf and mime.types into `dir`, changing only
 * the ports and making relative file paths absolute, so ours and the real programs read the same
 * rules whatever the ports and working directory. Every edit must apply exactly once: when
 * someone reshapes a file in config/, this fails loudly instead of running with the dev ports.
 */
export async function renderConfigs(dir: string, ports: Ports, appPorts: readonly number[] = [ports.app]): Promise<RenderedConfigs> {
  // varnishd and nginx drop root privileges for their workers: they must be able to read here.
  await chmod(dir, 0o755)
  const out: RenderedConfigs = {
    dir,
    stunnel: join(dir, 'stunnel.conf'),
    stunnelProxy: join(dir, 'stunnel-proxy.conf'),
    hitch: join(dir, 'hitch.conf'),
    vcl: join(dir, 'default.vcl'),
    nginx: join(dir, 'nginx.conf'),
    root: '',
  }
  const abs = (p: string) => (isAbsolute(p) ? p : join(REPO, p))
  const hostPort = (dev: number, port: number): Edit => ({
    what: `127.0.0.1:${dev}`,
    pattern: new RegExp(`\\b127\\.0\\.0\\.1:${dev}\\b`),
    replace: () => `127.0.0.1:${port}`,
  })
  const certKey: Edit[] = [
    { what: 'cert =', pattern: /^(\s*cert\s*=\s*)(\S+)$/m, replace: (_, k, v) => `${k}${abs(v)}` },
    { what: 'key =', pattern: /^(\s*key\s*=\s*)(\S+)$/m, replace: (_, k, v) => `${k}${abs(v)}` },
  ]
  await render('stunnel.conf', out.stunnel, [hostPort(DEV_PORTS.tls, ports.tls), hostPort(DEV_PORTS.router, ports.router), ...certKey])
  const proxyPort = ports.proxy ?? (DEV_PORTS.proxy as number)
  await render('stunnel-proxy.conf', out.stunnelProxy, [hostPort(DEV_PORTS.tls, ports.tls), hostPort(DEV_PORTS.proxy as number, proxyPort), ...certKey])
  const bracketed = (dev: number, port: number): Edit => ({
    what: `[127.0.0.1]:${dev}`,
    pattern: new RegExp(`\\[127\\.0\\.0\\.1\\]:${dev}\\b`),
    replace: () => `[127.0.0.1]:${port}`,
  })
  await render(
    'hitch.conf',
    out.hitch,
    [
      bracketed(DEV_PORTS.tls, ports.tls),
      bracketed(DEV_PORTS.proxy as number, proxyPort),
      { what: 'cert =', pattern: /^(\s*cert\s*=\s*")([^"]+)"/m, replace: (_, k, v) => `${k}${abs(v)}"` },
      { what: 'private-key =', pattern: /^(\s*private-key\s*=\s*")([^"]+)"/m, replace: (_, k, v) => `${k}${abs(v)}"` },
    ],
    // hitch refuses to run its workers as root; its example drops to a user of its own.
    process.getuid?.() === 0 ? 'user = "nobody"\n' : '',
  )
  // One app backend (and one add_backend line) per instance, the first one's text repeated.
  const perInstance = (text: string, from: string) =>
    appPorts.map((port, i) => text.replaceAll(from, String(i + 1)).replace(`"${DEV_PORTS.app}"`, `"${port}"`)).join('')
  await render('default.vcl', out.vcl, [
    {
      what: 'backend app1 { ... .port = "3000" ... }',
      pattern: /^backend app1 \{[^}]*\.port = "3000";[^}]*\}\n\n/m,
      replace: (block) => perInstance(block.replace('app1', 'app{N}'), '{N}'),
    },
    {
      what: 'add_backend(app1, ...)',
      pattern: /^[ \t]*\w+\.add_backend\(app1, [\d.]+\);\n/m,
      replace: (line) => perInstance(line.replace('app1', 'app{N}'), '{N}'),
    },
    { what: '.port = "8081"', pattern: /\.port = "8081"/, replace: () => `.port = "${ports.static}"` },
  ])
  await render('nginx.conf', out.nginx, [
    hostPort(DEV_PORTS.static, ports.static),
    {
      what: `server 127.0.0.1:${DEV_PORTS.app};`,
      pattern: new RegExp(`^[ \\t]*server 127\\.0\\.0\\.1:${DEV_PORTS.app};\\n`, 'm'),
      replace: (line) => appPorts.map((port) => line.replace(`:${DEV_PORTS.app};`, `:${port};`)).join(''),
    },
    {
      what: 'root',
      pattern: /^(\s*root\s+)([^;\s]+);/m, replace: (_, k, v) => {
        out.root = abs(v)
        return `${k}${out.root};`
      },
    },
  ])
  await copyFile(join(CONFIG_DIR, 'mime.types'), join(dir, 'mime.types'))
  // nginx -p DIR resolves pid and temp paths (.artifacts/...) under DIR; it creates only the
  // last path component itself, and opens DIR/logs/error.log before it reads error_log.
  await mkdir(join(dir, '.artifacts', 'nginx-tmp'), { recursive: true, mode: 0o755 })
  await mkdir(join(dir, 'logs'), { mode: 0o755 })
  return out
}

async function render(name: string, to: string, edits: Edit[], append = ''): Promise<void> {
  let text = await readFile(join(CONFIG_DIR, name), 'utf8')
  for (const edit of edits) {
    const global = new RegExp(edit.pattern.source, `${edit.pattern.flags}g`)
    const count = text.match(global)?.length ?? 0
    if (count !== 1) throw new Error(`config/${name}: expected one "${edit.what}" to fill in, found ${count}`)
    text = text.replace(edit.pattern, edit.replace as (s: string, ...g: string[]) => string)
  }
  await writeFile(to, text + append, { mode: 0o644 })
}
