import { createHash, randomBytes } from 'node:crypto'
import net, { type AddressInfo } from 'node:net'
import { formatAddress, type HostPort, type Logger, StartupError } from '@edgestack/common'
import type { BanList } from './bans.js'
import { type Counters, formatCounters } from './counters.js'
import type { Params } from './params.js'
import { VclAdminError, VclError, type VclRegistry } from './vcl/index.js'

/** varnishd's CLI status codes (include/vcli.h). */
const CLIS = { SYNTAX: 100, UNKNOWN: 101, TOOFEW: 104, TOOMANY: 105, PARAM: 106, AUTH: 107, OK: 200, CANT: 300, CLOSE: 500 } as const

export interface AdminDeps {
  params: Params
  counters: Counters
  bans: BanList
  /** The oldest ban number a stored object has not met yet; older bans are dropped. */
  oldestBanSeq(): number
  logger: Logger
  /** The contents of the -S file; undefined: no authentication, as varnishd without -S. */
  secret: Buffer | undefined
  extraStats(): Record<string, number>
  /** The loaded VCLs (`-f`'s, or the text `-b` stands for), for vcl.load / vcl.use / vcl.list / vcl.discard / vcl.show. */
  vcl?: VclRegistry
}

export interface AdminServer {
  listen(address: HostPort): Promise<HostPort>
  close(): Promise<void>
}

const BANNER = `-----------------------------
Varnish Cache CLI 1.0
-----------------------------
edgestack caching-router

Type 'help' for command list.
Type 'quit' to close CLI session.
`

/** Each command's usage and one line, as varnishd 7.1's `help COMMAND` prints them. */
const COMMANDS: Record<string, [string, string]> = {
  help: ['help [<command>]', 'Show command/protocol help.'],
  ping: ['ping [<timestamp>]', 'Keep connection alive.'],
  auth: ['auth <response>', 'Authenticate.'],
  quit: ['quit', 'Close connection.'],
  banner: ['banner', 'Print welcome banner.'],
  status: ['status', 'Check status of Varnish cache process.'],
  ban: ['ban <field> <operator> <arg> [&& <field> <oper> <arg> ...]', 'Mark obsolete all objects where all the conditions match.'],
  'ban.list': ['ban.list', 'List the active bans.'],
  'param.show': ['param.show [-l|<param>]', 'Show parameters and their values.'],
  'param.set': ['param.set <param> <value>', 'Set parameter value.'],
  stats: ['stats', 'The counters, as varnishstat -1 prints them (edgestack).'],
  'vcl.load': ['vcl.load <configname> <filename>', 'Compile and load the VCL file under the name provided.'],
  'vcl.use': ['vcl.use <configname>', 'Switch to the named configuration immediately.'],
  'vcl.list': ['vcl.list', 'List all loaded configuration.'],
  'vcl.discard': ['vcl.discard <configname>', 'Unload the named configurations (when possible).'],
  'vcl.show': ['vcl.show [-v] <configname>', 'Display the source code for the specified configuration.'],
}

const HELP = `${Object.values(COMMANDS)
  .map(([usage]) => usage)
  .join('\n')}\n`

const UNKNOWN_REQUEST: [number, string] = [CLIS.UNKNOWN, "Unknown request.\nType 'help' for more info.\n"]

/** varnishd's CLI framing: a 13-byte line `%-3d %-8d\n`, the body, a newline. */
function cliFrame(status: number, body: string): string {
  return `${String(status).padEnd(3)} ${String(Buffer.byteLength(body)).padEnd(8)}\n${body}\n`
}

/** The answer varnishadm computes: SHA-256 of challenge, NL, the secret file, challenge, NL. */
export function authResponse(challenge: string, secret: Buffer): string {
  return createHash('sha256')
    .update(`${challenge}\n`)
    .update(secret)
    .update(`${challenge}\n`)
    .digest('hex')
}

/**
 * The management interface on `-T`, speaking varnishd's CLI protocol so Debian's
 * `varnishadm -T host:port -S secretfile` drives the router: ping, status, ban, ban.list,
 * param.show, param.set, and `stats` (ours: the counters as `varnishstat -1` prints them).
 */
export function createAdminServer(d: AdminDeps): AdminServer {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    socket.setEncoding('latin1')
    let challenge: string | undefined
    if (d.secret !== undefined) {
      challenge = randomChallenge()
      socket.write(cliFrame(CLIS.AUTH, `${challenge}\n\nAuthentication required.\n`))
    } else socket.write(cliFrame(CLIS.OK, BANNER))
    let buffered = ''
    // vcl.load is asynchronous: answers go out in the order the commands came.
    let queue: Promise<void> = Promise.resolve()
    const answer = (words: string[]) => {
      queue = queue.then(async () => {
        const [status, body] = await run(d, words)
        if (socket.destroyed) return
        socket.write(cliFrame(status, body))
        if (status === CLIS.CLOSE) socket.end()
      })
    }
    socket.on('data', (chunk: string) => {
      buffered += chunk
      if (buffered.length > 65536) {
        socket.destroy()
        return
      }
      for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl).replace(/\r$/, '')
        buffered = buffered.slice(nl + 1)
        if (line.trim() === '') continue
        const words = tokenize(line)
        if (words === undefined) {
          socket.write(cliFrame(CLIS.SYNTAX, 'Syntax Error: bad quoting\n'))
          continue
        }
        if (challenge !== undefined) {
          const ok = words[0] === 'auth' && words[1] === authResponse(challenge, d.secret as Buffer)
          if (!ok) {
            // varnishd answers a wrong response with a fresh challenge.
            challenge = randomChallenge()
            socket.write(cliFrame(CLIS.AUTH, `${challenge}\n\nAuthentication required.\n`))
            continue
          }
          challenge = undefined
          socket.write(cliFrame(CLIS.OK, BANNER))
          continue
        }
        answer(words)
      }
    })
  })
  return {
    async listen(address) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) => reject(new StartupError(`-T ${formatAddress(address)}: ${err.message}`, { cause: err })))
        server.listen(address.port, address.host, () => resolve())
      })
      const a = server.address() as AddressInfo
      const bound = { host: a.address, port: a.port }
      d.logger.info(`admin CLI on ${formatAddress(bound)}${d.secret ? ' (secret required)' : ''}`)
      return bound
    },
    close() {
      for (const s of sockets) s.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

async function run(d: AdminDeps, words: string[]): Promise<[number, string]> {
  const [cmd, ...args] = words as [string, ...string[]]
  try {
    switch (cmd) {
      case 'ping':
        if (args.length > 1) return [CLIS.TOOMANY, 'Too many parameters\n']
        return [CLIS.OK, `PONG ${Math.floor(Date.now() / 1000)} 1.0`]
      case 'status':
        return [CLIS.OK, 'Child in state running']
      case 'help': {
        if (args.length > 1) return [CLIS.TOOMANY, 'Too many parameters\n']
        if (args.length === 0) return [CLIS.OK, HELP]
        const command = COMMANDS[args[0] as string]
        return command === undefined ? UNKNOWN_REQUEST : [CLIS.OK, `${command[0]}\n${command[1]}\n`]
      }
      case 'banner':
        return [CLIS.OK, BANNER]
      case 'quit':
        return [CLIS.CLOSE, 'Closing CLI connection']
      case 'ban':
        if (args.length < 3) return [CLIS.TOOFEW, 'Too few parameters\n']
        d.bans.prune(d.oldestBanSeq())
        d.bans.add(args)
        return [CLIS.OK, '']
      case 'ban.list':
        return [CLIS.OK, d.bans.list()]
      case 'param.show':
        // Its own check in varnishd (mcf_param_show), worded without the CLI layer's newline.
        if (args.length > 1) return [CLIS.TOOMANY, 'Too many parameters']
        return [CLIS.OK, d.params.show(args[0])]
      case 'param.set':
        if (args.length < 2) return [CLIS.TOOFEW, 'Too few parameters\n']
        if (args.length > 2) return [CLIS.TOOMANY, 'Too many parameters\n']
        d.params.set(args[0] as string, args[1] as string)
        return [CLIS.OK, '']
      case 'stats':
        return [CLIS.OK, formatCounters(d.counters, d.extraStats())]
      case 'vcl.load':
      case 'vcl.use':
      case 'vcl.list':
      case 'vcl.discard':
      case 'vcl.show':
        return await runVcl(d.vcl, cmd, args)
      default:
        return UNKNOWN_REQUEST
    }
  } catch (err) {
    // varnishd's error bodies (bans, parameters) end without a newline; varnishadm adds one.
    return [CLIS.PARAM, (err as Error).message]
  }
}

const VCL_ARGS: Record<string, [number, number]> = {
  'vcl.load': [2, 3],
  'vcl.use': [1, 1],
  'vcl.list': [0, 1],
  'vcl.discard': [1, 1],
  'vcl.show': [1, 2],
}

/** The vcl.* commands, answered the way varnishd's mgt_vcl.c answers them. */
async function runVcl(vcl: VclRegistry | undefined, cmd: string, args: string[]): Promise<[number, string]> {
  const [min, max] = VCL_ARGS[cmd] as [number, number]
  if (args.length < min) return [CLIS.TOOFEW, 'Too few parameters\n']
  if (args.length > max) return [CLIS.TOOMANY, 'Too many parameters\n']
  if (vcl === undefined) return [CLIS.PARAM, 'No VCL: the router was started without -f\n']
  try {
    switch (cmd) {
      case 'vcl.load':
        await vcl.load(args[0] as string, args[1] as string)
        return [CLIS.OK, 'VCL compiled.\n']
      case 'vcl.use':
        vcl.use(args[0] as string)
        return [CLIS.OK, `VCL '${args[0]}' now active`]
      case 'vcl.list':
        return [CLIS.OK, vcl.list()]
      case 'vcl.discard':
        vcl.discard(args[0] as string)
        return [CLIS.OK, '']
      default: {
        const verbose = args[0] === '-v'
        return [CLIS.OK, vcl.show(args[verbose ? 1 : 0] as string, verbose)]
      }
    }
  } catch (err) {
    if (err instanceof VclError) return [CLIS.PARAM, `Message from VCC-compiler:\n${err.message}\nRunning VCC-compiler failed, exited with 2\nVCL compilation failed`]
    if (err instanceof VclAdminError) return [err.cliStatus, err.message]
    // An unreadable file and the like: the running VCL stays.
    return [CLIS.PARAM, (err as Error).message]
  }
}

function randomChallenge(): string {
  // 32 lower-case letters, as varnishd's mgt_cli_challenge makes.
  const bytes = randomBytes(32)
  let s = ''
  for (const b of bytes) s += String.fromCharCode(97 + (b % 26))
  return s
}

/** The CLI's words: blanks separate, double quotes group with backslash escapes (varnish's VAV_Parse). */
function tokenize(line: string): string[] | undefined {
  const out: string[] = []
  let i = 0
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++
    if (i >= line.length) break
    let word = ''
    if (line[i] === '"') {
      i++
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < line.length) {
          const next = line[i + 1] as string
          word += next === 'n' ? '\n' : next === 't' ? '\t' : next
          i += 2
        } else word += line[i++]
      }
      if (line[i] !== '"') return undefined
      i++
    } else {
      while (i < line.length && line[i] !== ' ' && line[i] !== '\t') word += line[i++]
    }
    out.push(word)
  }
  return out
}
