import { devCertificatePaths, ensureDevCertificates } from '@edgestack/tls-terminator'
import { type Daemon, REPO, startDaemon } from './processes.js'

export const CERT_DIR = `${REPO}.certs`
export const PUBLIC_DIR = `${REPO}packages/demo-app/public`

export interface Stack {
  app: Daemon
  static: Daemon
  router: Daemon
  tls: Daemon
  httpsUrl: string
  httpUrl: string
  caCert: string
  stop(): Promise<void>
}

/** The article's chain on ephemeral loopback ports, started from the app outwards. */
export async function startStack(): Promise<Stack> {
  await ensureDevCertificates(CERT_DIR)
  const certs = devCertificatePaths(CERT_DIR)
  const started: Daemon[] = []
  try {
    const app = await startDaemon('demo-app', ['--listen', '127.0.0.1:0'])
    started.push(app)
    const stat = await startDaemon('static-server', [
      '--listen',
      '127.0.0.1:0',
      '--root',
      PUBLIC_DIR,
      '--proxy',
      `127.0.0.1:${app.port}`,
    ])
    started.push(stat)
    const router = await startDaemon('caching-router', [
      '-a',
      '127.0.0.1:0',
      '--static-backend',
      `127.0.0.1:${stat.port}`,
      '--app-backend',
      `127.0.0.1:${app.port}`,
    ])
    started.push(router)
    const tls = await startDaemon('tls-terminator', [
      '--accept',
      '127.0.0.1:0',
      '--connect',
      `127.0.0.1:${router.port}`,
      '--cert',
      certs.cert,
      '--key',
      certs.key,
    ])
    started.push(tls)
    const { readFile } = await import('node:fs/promises')
    return {
      app,
      static: stat,
      router,
      tls,
      httpsUrl: `https://localhost:${tls.port}`,
      httpUrl: `http://127.0.0.1:${router.port}`,
      caCert: await readFile(certs.caCert, 'utf8'),
      stop: () => stopAll(started),
    }
  } catch (err) {
    await stopAll(started)
    throw err
  }
}

async function stopAll(daemons: Daemon[]): Promise<void> {
  await Promise.all(daemons.reverse().map((d) => d.stop()))
}
