import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import { type AccessLog, type HostPort, type Logger, StartupError } from '@edgestack/common'
import { type AdminDeps, type AdminServer, cliBanner, createAdminServer, runCommand } from '../admin.js'
import type { CliModel } from '../config/model.js'
import { type CachingRouter, createCachingRouter } from '../server.js'
import { Params } from '../params.js'
import { readSecret } from '../secret-file.js'
import { VclRegistry } from '../vcl/index.js'
import { openChildShm } from '../vsm/shm.js'
import type { ChildCounters } from '../vsm/vsc-publisher.js'
import type { VslLog } from '../vsm/vsl.js'
import { SLT } from '../vsm/vsl-tags.js'
import { VsmSet } from '../vsm/vsm.js'
import { type CliAnswer, CLIS, serveCli } from './cli-session.js'

type State = 'stopped' | 'starting' | 'running' | 'stopping'

/** -M: seconds between attempts, growing to mgt_cli.c's ten. */
const M_POLL_MAX = 10

/**
 * varnishd's manager process, as varnishtest drives it (`-d`, `-M`, `-n`): the CLI comes
 * before any serving; `start` makes the serving side (varnishd's child: our router, in this
 * process) with the active VCL and binds `-a`; `stop` closes it and its cache, as a child's
 * exit loses a malloc store; VCLs and parameters stay with the manager. With `-n DIR` the
 * manager's shared-memory index is written at once and the child's (with its log) while it
 * runs, so varnishtest and varnishlog can attach.
 */
export class Manager {
  readonly #model: CliModel
  readonly #logger: Logger
  readonly #access: AccessLog
  readonly #vcl = new VclRegistry()
  // The manager's parameters (param.set); a started child takes their values then.
  readonly #params = new Params()
  #state: State = 'stopped'
  #router: CachingRouter | undefined
  #vsl: VslLog | undefined
  #vsc: ChildCounters | undefined
  #childSet: VsmSet | undefined
  #mgtSet: VsmSet | undefined
  #secret: Buffer | undefined
  #closed = false
  #reverse: net.Socket | undefined
  #admin: AdminServer | undefined
  readonly #deps: AdminDeps

  constructor(model: CliModel, logger: Logger, access: AccessLog) {
    this.#model = model
    for (const [name, value] of model.params) this.#params.set(name, value)
    this.#logger = logger
    this.#access = access
    this.#deps = {
      params: this.#params,
      logger,
      secret: undefined,
      vcl: this.#vcl,
      child: () => (this.#state === 'running' ? this.#router?.cli : undefined),
      manager: {
        state: () => this.#state,
        start: () => this.start(),
        stop: () => this.stop(),
      },
    }
  }

  /** Before any CLI: the work directory, `_.secret`, the manager's VSM, `-P`, `-f`. */
  async prepare(): Promise<void> {
    const m = this.#model
    if (m.workdir !== undefined) {
      const dir = resolve(m.workdir)
      await mkdir(dir, { recursive: true }).catch((err: Error) => {
        throw new StartupError(`-n ${m.workdir}: ${err.message}`, { cause: err })
      })
      this.#mgtSet = await VsmSet.create(dir, '_.vsm_mgt')
    }
    const secretFile = m.admin?.secretFile
    if (secretFile !== undefined) this.#secret = await readSecret(secretFile)
    else if (m.workdir !== undefined) {
      // mgt_main.c: without -S, a fresh random secret in the work directory.
      this.#secret = randomBytes(256)
      await writeFile(join(resolve(m.workdir), '_.secret'), this.#secret, { mode: 0o640 })
    }
    this.#deps.secret = this.#secret
    if (this.#mgtSet !== undefined) {
      // libvarnishapi's iterator starts at the manager's segments: there must be one.
      await this.#mgtSet.addArg('-i', m.identity ?? hostname())
      if (secretFile !== undefined) await this.#mgtSet.addArg('-S', resolve(secretFile))
      else if (m.workdir !== undefined) await this.#mgtSet.addArg('-S', join(resolve(m.workdir), '_.secret'))
    }
    if (m.pidFile !== undefined) await writeFile(m.pidFile, `${process.pid}\n`)
    if (m.vcl.kind === 'file') {
      await this.#vcl.load('boot', m.vcl.path)
      this.#vcl.use('boot')
    }
  }

  /** -T: the same CLI for varnishadm. */
  async listenAdmin(address: HostPort): Promise<void> {
    this.#admin = createAdminServer(this.#deps)
    const bound = await this.#admin.listen(address)
    await this.#mgtSet?.addArg('-T', `${bound.host} ${bound.port}\n`)
  }

  /** The CLI on stdin and stdout (-d); the process ends when stdin does. */
  console(): void {
    serveCli(process.stdin, process.stdout, this.#session(undefined))
    process.stdin.on('end', () => {
      this.#logger.info('manager stopping child')
      void this.close().then(() => {
        this.#logger.info('manager dies')
        process.exitCode ??= 0
      })
    })
  }

  /** -M: connect out and serve the CLI there; retry while the other side does not answer. */
  reverse(address: HostPort, poll = 1): void {
    if (this.#closed) return
    const socket = net.connect(address.port, address.host)
    let connected = false
    socket.on('connect', () => {
      connected = true
      this.#reverse = socket
      serveCli(socket, socket, this.#session(this.#secret))
    })
    socket.on('error', (err) => {
      if (!connected) this.#logger.info(`Could not connect to CLI-master: ${err.message}`)
    })
    socket.on('close', () => {
      if (this.#reverse === socket) this.#reverse = undefined
      const next = connected ? 1 : Math.min(poll + 1, M_POLL_MAX)
      setTimeout(() => this.reverse(address, next), (connected ? 1 : poll) * 1000).unref()
    })
  }

  #session(secret: Buffer | undefined) {
    return {
      secret,
      banner: () => cliBanner(this.#deps),
      run: (words: string[]) => runCommand(this.#deps, words),
      // varnishd's child logs the commands it is handed (cache_cli.c: "Rd", then "Wr").
      onAnswer: (line: string, [status, body]: CliAnswer) => {
        if (this.#vsl === undefined) return
        this.#vsl.write(SLT.CLI, 0, `Rd ${line}`)
        this.#vsl.write(SLT.CLI, 0, `Wr ${status} ${Buffer.byteLength(body)} ${body}`)
      },
    }
  }

  async start(): Promise<CliAnswer> {
    if (this.#state !== 'stopped') return [CLIS.CANT, `Child in state ${this.#state}`]
    const m = this.#model
    if (this.#vcl.active === undefined && !m.backendGiven) return [CLIS.CANT, 'No VCL available']
    this.#state = 'starting'
    try {
      if (this.#vcl.active === undefined && m.vcl.kind === 'text') {
        // -b or the article's flags: the VCL text they stand for, as varnishd's -b.
        await this.#vcl.load('boot', { name: m.vcl.name, text: m.vcl.text })
        this.#vcl.use('boot')
      }
      // The registry and the parameters stay the manager's: the router reads them as they are.
      const router = createCachingRouter({ ...m, admin: undefined }, this.#logger, this.#access, { vcl: this.#vcl, params: this.#params })
      await router.listen()
      this.#router = router
      if (this.#mgtSet !== undefined) {
        const shm = await openChildShm(m.workdir as string, m.logBytes, router, this.#logger)
        this.#childSet = shm.set
        this.#vsl = shm.vsl
        this.#vsc = shm.vsc
      }
      this.#state = 'running'
      return [CLIS.OK, '']
    } catch (err) {
      this.#state = 'stopped'
      await this.#router?.close({ drainTimeoutMs: 0 })
      this.#router = undefined
      return [CLIS.CANT, `Could not start child: ${(err as Error).message}`]
    }
  }

  async stop(): Promise<CliAnswer> {
    if (this.#state !== 'running') return [CLIS.CANT, `Child in state ${this.#state}`]
    this.#state = 'stopping'
    this.#logger.info('Stopping Child')
    // varnishd's child exits: connections drop, the cache is gone; loaded VCLs stay.
    await this.#router?.close({ drainTimeoutMs: 0 })
    this.#router = undefined
    await this.#vsl?.close()
    this.#vsl = undefined
    await this.#vsc?.close()
    this.#vsc = undefined
    await this.#childSet?.remove()
    this.#childSet = undefined
    this.#state = 'stopped'
    this.#logger.info('Child cleanup complete')
    return [CLIS.OK, '']
  }

  /** The child stopped, the CLI connection closed, the VSM removed. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#state === 'running') await this.stop()
    this.#reverse?.destroy()
    await this.#admin?.close()
    this.#vcl.close()
    await this.#mgtSet?.remove()
  }
}
