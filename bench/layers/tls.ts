import { freePort } from '../procs.js'
import { renderTemplate } from '../templates.js'
import { type BenchContext, ourCli, oursReadsConfig, type Server, startServer } from './server.js'

async function writeStunnelConf(ctx: BenchContext, port: number, connectPort: number): Promise<string> {
  return renderTemplate('stunnel.conf', ctx.dir, `stunnel-${port}.conf`, {
    CERT: ctx.cert,
    KEY: ctx.key,
    ACCEPT_PORT: port,
    CONNECT_PORT: connectPort,
    DEBUG: ctx.stunnelDebug,
  })
}

/** `tls-terminator FILE` once it reads stunnel.conf (its --help names the file); until then flags. */
const READS_STUNNEL_CONF = /stunnel\.conf|tls-terminator \[?(?:FILE|CONF|CONFIG)\b/

export async function startTlsTerminator(ctx: BenchContext, connectPort: number): Promise<Server> {
  const port = await freePort()
  const conf = await writeStunnelConf(ctx, port, connectPort)
  const fromConfig = await oursReadsConfig(ctx, 'tls-terminator', READS_STUNNEL_CONF)
  const args = fromConfig
    ? [conf]
    : ['--accept', `127.0.0.1:${port}`, '--connect', `127.0.0.1:${connectPort}`, '--cert', ctx.cert, '--key', ctx.key]
  const s = await startServer(ctx, 'tls-terminator', 'ours', port, process.execPath, [ourCli('tls-terminator'), ...args])
  return { ...s, startedFrom: fromConfig ? 'config' : 'flags' }
}

export async function startStunnel(ctx: BenchContext, stunnel: string, connectPort: number): Promise<Server> {
  const port = await freePort()
  const conf = await writeStunnelConf(ctx, port, connectPort)
  return startServer(ctx, 'stunnel', 'theirs', port, stunnel, [conf])
}

/**
 * The bench's hitch.conf for one pair of ports. As root, hitch refuses to run its workers
 * unless told to drop privileges (its example's `user`); ours accepts the same line.
 */
async function writeHitchConf(ctx: BenchContext, port: number, connectPort: number): Promise<string> {
  return renderTemplate('hitch.conf', ctx.dir, `hitch-${port}.conf`, {
    CERT: ctx.cert,
    KEY: ctx.key,
    ACCEPT_PORT: port,
    CONNECT_PORT: connectPort,
    USER: process.getuid?.() === 0 ? 'user = "nobody"' : '',
  })
}

/** `tls-terminator --config=hitch.conf`, as hitch is started: ALPN h2 and PROXY v2 to `proxyPort`. */
export async function startTlsTerminatorHitch(ctx: BenchContext, proxyPort: number): Promise<Server> {
  const port = await freePort()
  const conf = await writeHitchConf(ctx, port, proxyPort)
  const s = await startServer(ctx, 'tls-terminator', 'ours', port, process.execPath, [ourCli('tls-terminator'), `--config=${conf}`])
  return { ...s, startedFrom: 'config' }
}

export async function startHitch(ctx: BenchContext, hitch: string, proxyPort: number): Promise<Server> {
  const port = await freePort()
  const conf = await writeHitchConf(ctx, port, proxyPort)
  return startServer(ctx, 'hitch', 'theirs', port, hitch, [`--config=${conf}`])
}
