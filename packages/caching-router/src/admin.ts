import net from 'node:net'
import { formatAddress, type HostPort, type Logger, listenOn } from '@edgestack/common'
import type { BanList } from './bans.js'
import { type CliAnswer, CLIS, serveCli } from './mgt/cli-session.js'
import { type Counters, formatCounters } from './counters.js'
import type { Params } from './params.js'
import { backendList, backendSetHealth } from './mgt/backend-commands.js'
import { banListJson, jsonAnswer, paramShowJson, storageList, vclListJson } from './mgt/cli-json.js'
import { runVclCommand } from './mgt/vcl-commands.js'
import type { VclRegistry } from './vcl/index.js'

/** What the serving side (varnishd's child) answers: its counters, bans, sockets and backends. */
export interface ChildCli {
  counters: Counters
  bans: BanList
  /** The oldest ban number a stored object has not met yet; older bans are dropped. */
  oldestBanSeq(): number
  extraStats(): Record<string, number>
  /** `debug.listen_address`: `NAME HOST PORT` a line, for each -a. */
  listenAddresses(): string
  /** `debug.xid [N]`: sets the last transaction id handed out when N is given; returns it. */
  xid(last?: number): number
  /** `--workers N`: a command that changed state here, carried out by every other worker too. */
  fanout?(words: string[]): void
  /** `--workers N`: every worker's counters and storage figures added up, for `stats`. */
  summedStats?(): Promise<{ counters: Counters; extra: Record<string, number> }>
  /** `--workers N`: `debug.panic.worker` ends worker thread `index` (1..N-1), as a crash would. */
  panicWorker?(index: number | undefined): string | undefined
}

export interface PeerStats {
  counters: Record<string, number>
  extra: Record<string, number>
}

/** What every worker must see: the cache's bans, parameters, VCLs, backends' health. */
const FANOUT_COMMANDS = new Set(['ban', 'param.set', 'param.reset', 'vcl.load', 'vcl.inline', 'vcl.use', 'vcl.discard', 'backend.set_health'])

/** varnishd's manager (-d, -M): the child's state and its start and stop. */
export interface ManagerCli {
  state(): 'stopped' | 'starting' | 'running' | 'stopping'
  start(): Promise<CliAnswer>
  stop(): Promise<CliAnswer>
}

export interface AdminDeps {
  params: Params
  logger: Logger
  /** The contents of the -S file; undefined: no authentication, as varnishd without -S. */
  secret: Buffer | undefined
  /** The serving side; undefined while the manager has it stopped. */
  child(): ChildCli | undefined
  /** With -d / -M: start, stop and the state `status` reports. */
  manager?: ManagerCli
  /** With `-f` or a manager: the loaded VCLs, for the vcl.* commands. */
  vcl?: VclRegistry
}

export interface AdminServer {
  listen(address: HostPort): Promise<HostPort>
  close(): Promise<void>
}

/** The banner after authentication, with mgt_cli.c's last line while the child is stopped. */
export function cliBanner(d: AdminDeps): string {
  const stopped = d.manager !== undefined && d.manager.state() !== 'running'
  return `-----------------------------
Varnish Cache CLI 1.0
-----------------------------
edgestack caching-router

Type 'help' for command list.
Type 'quit' to close CLI session.
${stopped ? "Type 'start' to launch worker process.\n" : ''}`
}

/** Each command's usage and one line, as varnishd 7.1's `help COMMAND` prints them. */
const COMMANDS: Record<string, [string, string]> = {
  help: ['help [<command>]', 'Show command/protocol help.'],
  ping: ['ping [<timestamp>]', 'Keep connection alive.'],
  auth: ['auth <response>', 'Authenticate.'],
  quit: ['quit', 'Close connection.'],
  banner: ['banner', 'Print welcome banner.'],
  status: ['status [-j]', 'Check status of Varnish cache process.'],
  start: ['start', 'Start the Varnish cache process.'],
  stop: ['stop', 'Stop the Varnish cache process.'],
  ban: ['ban <field> <operator> <arg> [&& <field> <oper> <arg> ...]', 'Mark obsolete all objects where all the conditions match.'],
  'ban.list': ['ban.list [-j]', 'List the active bans.'],
  'param.show': ['param.show [-l|-j] [<param>]', 'Show parameters and their values.'],
  'param.set': ['param.set <param> <value>', 'Set parameter value.'],
  'param.reset': ['param.reset <param>', 'Reset parameter to default value.'],
  stats: ['stats', 'The counters, as varnishstat -1 prints them (edgestack).'],
  'vcl.load': ['vcl.load <configname> <filename>', 'Compile and load the VCL file under the name provided.'],
  'vcl.inline': ['vcl.inline <configname> <quoted_VCLstring> [auto|cold|warm]', 'Compile and load the VCL data under the name provided.'],
  'vcl.use': ['vcl.use <configname>', 'Switch to the named configuration immediately.'],
  'vcl.list': ['vcl.list [-j]', 'List all loaded configuration.'],
  'vcl.discard': ['vcl.discard <configname>', 'Unload the named configurations (when possible).'],
  'vcl.show': ['vcl.show [-v] <configname>', 'Display the source code for the specified configuration.'],
  'backend.list': ['backend.list [-j] [-p] [<backend_pattern>]', 'List backends.'],
  'storage.list': ['storage.list [-j]', 'List storage devices.'],
  'backend.set_health': ['backend.set_health <backend_pattern> [auto|healthy|sick]', 'Set health status of backend(s).'],
  'debug.listen_address': ['debug.listen_address', 'Report the actual listen address.'],
  'debug.xid': ['debug.xid [<xid> [<chunk>]]', 'Examine or set XID.'],
  'debug.fragfetch': ['debug.fragfetch', 'Enable fetch fragmentation.'],
  'panic.show': ['panic.show [-j]', 'Return the last panic, if any.'],
  'panic.clear': ['panic.clear [-z]', 'Clear the last panic, if any, -z will clear related varnishstat counter(s)'],
}

const HELP = `${Object.values(COMMANDS)
  .map(([usage]) => usage)
  .join('\n')}\n`

const UNKNOWN_REQUEST: CliAnswer = [CLIS.UNKNOWN, "Unknown request.\nType 'help' for more info.\n"]
// mcf_askchild: a command only the child answers, while there is none.
const CHILD_NOT_RUNNING: CliAnswer = [CLIS.UNKNOWN, "Unknown request in manager process (child not running).\nType 'help' for more info."]
const CHILD_COMMANDS = new Set(['ban', 'ban.list', 'stats', 'debug.listen_address', 'debug.xid', 'debug.fragfetch', 'debug.panic.worker'])
const MANAGER_COMMANDS = new Set(['start', 'stop', 'panic.show', 'panic.clear'])

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
    serveCli(socket, socket, { secret: d.secret, banner: () => cliBanner(d), run: (words) => runCommand(d, words) })
  })
  return {
    async listen(address) {
      // On the socket the manager handed down for -T, when there is one (listen-fds.ts).
      const bound = await listenOn(server, address, { describe: '-T' })
      d.logger.info(`admin CLI on ${formatAddress(bound)}${d.secret ? ' (secret required)' : ''}`)
      return bound
    },
    close() {
      for (const s of sockets) s.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

/**
 * One command, answered in varnishd's words and status codes (mgt_cli.c, cache_cli.c); with
 * `--workers N`, one that changed state is then carried out by every worker.
 */
export async function runCommand(d: AdminDeps, words: string[]): Promise<CliAnswer> {
  const answer = await runHere(d, words)
  if (answer[0] === CLIS.OK && FANOUT_COMMANDS.has(words[0] as string)) d.child()?.fanout?.(words)
  return answer
}

/** One command, in this worker only (how a worker carries out a fanned-out command). */
export async function runHere(d: AdminDeps, words: string[]): Promise<CliAnswer> {
  const [cmd, ...args] = words as [string, ...string[]]
  const child = d.child()
  if (CHILD_COMMANDS.has(cmd) && child === undefined) return CHILD_NOT_RUNNING
  if (MANAGER_COMMANDS.has(cmd) && d.manager === undefined) return UNKNOWN_REQUEST
  try {
    switch (cmd) {
      case 'ping':
        if (args.length > 1) return [CLIS.TOOMANY, 'Too many parameters\n']
        return [CLIS.OK, `PONG ${Math.floor(Date.now() / 1000)} 1.0`]
      case 'status':
        if (args[0] === '-j') return jsonAnswer(words, [d.manager?.state() ?? 'running'])
        return [CLIS.OK, `Child in state ${d.manager?.state() ?? 'running'}`]
      case 'storage.list':
        return storageList(words)
      case 'start':
        return await (d.manager as ManagerCli).start()
      case 'stop':
        return await (d.manager as ManagerCli).stop()
      case 'panic.show':
        // We have no panics: a crash of the serving side is a stack trace in the log.
        return [CLIS.CANT, 'Child has not panicked or panic has been cleared']
      case 'panic.clear':
        return [CLIS.CANT, 'No panic to clear']
      case 'help': {
        if (args.length > 1) return [CLIS.TOOMANY, 'Too many parameters\n']
        if (args.length === 0) return [CLIS.OK, HELP]
        const command = COMMANDS[args[0] as string]
        return command === undefined ? UNKNOWN_REQUEST : [CLIS.OK, `${command[0]}\n${command[1]}\n`]
      }
      case 'banner':
        return [CLIS.OK, cliBanner(d)]
      case 'quit':
        return [CLIS.CLOSE, 'Closing CLI connection']
      case 'ban': {
        const c = child as ChildCli
        if (args.length < 3) return [CLIS.TOOFEW, 'Too few parameters\n']
        c.bans.prune(c.oldestBanSeq())
        c.bans.add(args)
        return [CLIS.OK, '']
      }
      case 'ban.list':
        if (args[0] === '-j') return banListJson(words, (child as ChildCli).bans)
        return [CLIS.OK, (child as ChildCli).bans.list()]
      case 'debug.panic.worker': {
        // varnishd panics its one child; with --workers one worker thread ends instead, and
        // the pool starts another while the rest serve. Without --workers: not offered.
        const panic = (child as ChildCli).panicWorker
        if (panic === undefined) return UNKNOWN_REQUEST
        const n = args[0] === undefined ? undefined : Number(args[0])
        const error = panic(n)
        return error === undefined ? [CLIS.OK, ''] : [CLIS.PARAM, error]
      }
      case 'debug.listen_address':
        return [CLIS.OK, (child as ChildCli).listenAddresses()]
      case 'debug.fragfetch': {
        // varnishd cuts each backend read into pieces this size (varnishtest's check that
        // VEP and gunzip give the same result however a body arrives). What a client gets
        // does not change, and ours parses a whole body: accepted, checked, no effect.
        if (args.length < 1) return [CLIS.TOOFEW, 'Too few parameters\n']
        if (args.length > 1) return [CLIS.TOOMANY, 'Too many parameters\n']
        return [CLIS.OK, '']
      }
      case 'debug.xid': {
        if (args.length > 2) return [CLIS.TOOMANY, 'Too many parameters\n']
        const n = args[0] === undefined ? undefined : Number.parseInt(args[0], 10)
        // cache_vxid.c: "XID is %u chunk %u"; we hand out ids one at a time (chunk 1).
        return [CLIS.OK, `XID is ${(child as ChildCli).xid(Number.isNaN(n) ? 0 : n)} chunk 1`]
      }
      case 'param.show':
        // Its own check in varnishd (mcf_param_show), worded without the CLI layer's newline.
        if (args[0] === '-j') return paramShowJson(words, d.params, args[1])
        if (args.length > 1) return [CLIS.TOOMANY, 'Too many parameters']
        return [CLIS.OK, d.params.show(args[0])]
      case 'param.set':
        if (args.length < 2) return [CLIS.TOOFEW, 'Too few parameters\n']
        if (args.length > 2) return [CLIS.TOOMANY, 'Too many parameters\n']
        d.params.set(args[0] as string, args[1] as string)
        return [CLIS.OK, '']
      case 'param.reset':
        if (args.length < 1) return [CLIS.TOOFEW, 'Too few parameters\n']
        if (args.length > 1) return [CLIS.TOOMANY, 'Too many parameters\n']
        d.params.reset(args[0] as string)
        return [CLIS.OK, '']
      case 'stats': {
        const c = child as ChildCli
        if (c.summedStats === undefined) return [CLIS.OK, formatCounters(c.counters, c.extraStats())]
        // --workers N: one cache, one set of counters, as varnishd's one child shows them.
        const sum = await c.summedStats()
        return [CLIS.OK, formatCounters(sum.counters, sum.extra)]
      }
      case 'backend.list':
        return backendList(d.vcl, args)
      case 'backend.set_health':
        return backendSetHealth(d.vcl, args)
      case 'vcl.list':
        if (args[0] === '-j') return vclListJson(words, d.vcl)
        return await runVclCommand(d.vcl, cmd, args)
      case 'vcl.load':
      case 'vcl.inline':
      case 'vcl.use':
      case 'vcl.discard':
      case 'vcl.show':
        return await runVclCommand(d.vcl, cmd, args)
      default:
        return UNKNOWN_REQUEST
    }
  } catch (err) {
    // varnishd's error bodies (bans, parameters) end without a newline; varnishadm adds one.
    return [CLIS.PARAM, (err as Error).message]
  }
}
