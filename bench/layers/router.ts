import { join } from 'node:path'
import { freePort } from '../procs.js'
import { renderTemplate } from '../templates.js'
import { type BenchContext, ourCli, oursReadsConfig, type Server, startServer } from './server.js'

export interface RouterBackends {
  /** The article's "nginx" backend: \.(js|css|img)$ */
  nginxPort: number
  /** The article's "node" backend: everything else, and websockets. */
  nodePort: number
}

async function writeVcl(ctx: BenchContext, port: number, b: RouterBackends): Promise<string> {
  return renderTemplate('default.vcl', ctx.dir, `default-${port}.vcl`, { NODE_PORT: b.nodePort, NGINX_PORT: b.nginxPort })
}

/** `caching-router -f FILE -a ADDR` (varnishd's flags) once it compiles VCL; until then flags. */
const READS_VCL = /(^|\s)-f[ ,=](?!.*not supported)/m

/**
 * Ours from the shared VCL, or with `builtin` varnishd's `-b` form (one backend, the built-in
 * VCL only): the baseline the article's VCL is costed against.
 */
export async function startCachingRouter(
  ctx: BenchContext,
  b: RouterBackends,
  o: { builtin?: boolean; params?: string[]; proxy?: boolean } = {},
): Promise<Server> {
  const port = await freePort()
  if (o.builtin) {
    const args = ['-b', `127.0.0.1:${b.nodePort}`, '-a', `127.0.0.1:${port}`]
    const s = await startServer(ctx, 'caching-router -b', 'ours', port, process.execPath, [ourCli('caching-router'), ...args])
    return { ...s, startedFrom: 'config' }
  }
  const vcl = await writeVcl(ctx, port, b)
  const fromConfig = await oursReadsConfig(ctx, 'caching-router', READS_VCL)
  const args = fromConfig
    ? ['-f', vcl, '-a', listenArg(port, o.proxy), ...(o.params ?? [])]
    : ['-a', `127.0.0.1:${port}`, '--static-backend', `127.0.0.1:${b.nginxPort}`, '--app-backend', `127.0.0.1:${b.nodePort}`]
  const s = await startServer(ctx, 'caching-router', 'ours', port, process.execPath, [ourCli('caching-router'), ...args])
  return { ...s, startedFrom: fromConfig ? 'config' : 'flags' }
}

/** varnishd's `-a`: the address, with `,PROXY` for the listener hitch's PROXY v2 goes to. */
function listenArg(port: number, proxy = false): string {
  return `127.0.0.1:${port}${proxy ? ',PROXY' : ''}`
}

/**
 * varnishd in the foreground with its state in the run's temp dir, no jail (it may run as
 * root or not) and no management port, as an unprivileged user would run it.
 */
export async function startVarnishd(
  ctx: BenchContext,
  varnishd: string,
  b: RouterBackends,
  params: string[] = [],
  proxy = false,
): Promise<Server> {
  const port = await freePort()
  const vcl = await writeVcl(ctx, port, b)
  return startServer(ctx, 'varnishd', 'theirs', port, varnishd, [
    '-F',
    '-j',
    'none',
    '-n',
    join(ctx.dir, `varnish-${port}`),
    '-a',
    listenArg(port, proxy),
    '-f',
    vcl,
    '-s',
    'malloc,256m',
    '-T',
    'none',
    ...params,
  ])
}
