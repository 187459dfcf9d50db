import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { freePort } from '../procs.js'
import { REPO, renderTemplate } from '../templates.js'
import { type BenchContext, ourCli, oursReadsConfig, type Server, startServer } from './server.js'

/** The nginx.conf both nginx and static-server read, for one pair of ports (`auto` workers: scenario 18). */
export async function writeNginxConf(ctx: BenchContext, port: number, appPort: number, workerProcesses: '1' | 'auto' = '1'): Promise<string> {
  const tag = `nginx-${port}`
  await mkdir(join(ctx.dir, `${tag}-tmp`), { recursive: true })
  return renderTemplate('nginx.conf', ctx.dir, `${tag}.conf`, {
    DIR: ctx.dir,
    TAG: tag,
    MIME_TYPES: join(REPO, 'config', 'mime.types'),
    ROOT: ctx.root,
    PORT: port,
    APP_PORT: appPort,
    WORKER_PROCESSES: workerProcesses,
  })
}

/** `static-server -p PREFIX -c FILE` once it reads nginx.conf; until then the same settings as flags. */
const READS_NGINX_CONF = /(^|\s)-c[ ,=]/m

export async function startStaticServer(ctx: BenchContext, appPort: number, workerProcesses: '1' | 'auto' = '1'): Promise<Server> {
  const port = await freePort()
  const conf = await writeNginxConf(ctx, port, appPort, workerProcesses)
  const fromConfig = await oursReadsConfig(ctx, 'static-server', READS_NGINX_CONF)
  const args = fromConfig
    ? ['-p', ctx.dir, '-c', conf]
    : ['--listen', `127.0.0.1:${port}`, '--root', ctx.root, '--proxy', `127.0.0.1:${appPort}`]
  const s = await startServer(ctx, 'static-server', 'ours', port, process.execPath, [ourCli('static-server'), ...args])
  return { ...s, startedFrom: fromConfig ? 'config' : 'flags' }
}

export async function startNginx(ctx: BenchContext, nginx: string, appPort: number, workerProcesses: '1' | 'auto' = '1'): Promise<Server> {
  const port = await freePort()
  const conf = await writeNginxConf(ctx, port, appPort, workerProcesses)
  return startServer(ctx, 'nginx', 'theirs', port, nginx, ['-p', ctx.dir, '-e', join(ctx.dir, 'nginx-startup.log'), '-c', conf])
}

/** nginx answering `return 200` with no log, in plain HTTP and in TLS: the clients' ceilings. */
export async function startNginxCeiling(ctx: BenchContext, nginx: string): Promise<{ http: Server; tls: Server }> {
  const port = await freePort()
  const tlsPort = await freePort()
  await mkdir(join(ctx.dir, 'nginx-tmp'), { recursive: true })
  const conf = await renderTemplate('nginx-ceiling.conf', ctx.dir, 'nginx-ceiling.conf', {
    DIR: ctx.dir,
    PORT: port,
    TLS_PORT: tlsPort,
    CERT: ctx.cert,
    KEY: ctx.key,
  })
  const http = await startServer(ctx, 'nginx return 200', 'peer', port, nginx, [
    '-p',
    ctx.dir,
    '-e',
    join(ctx.dir, 'nginx-startup.log'),
    '-c',
    conf,
  ])
  return { http, tls: { ...http, name: 'nginx ssl return 200', port: tlsPort } }
}
