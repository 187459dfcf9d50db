import { parseArgs, type ParseArgsConfig } from 'node:util'
import { ChildStartError, EdgeError, exitCodeFor, UsageError } from './errors.js'

/**
 * node:util's parseArgs with our error type: a bad flag becomes a UsageError (exit 2)
 * whose message names the flag, and `--help` short-circuits.
 */
export function parseCommandLine<T extends ParseArgsConfig>(argv: string[], config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs({ ...config, args: argv, strict: true }) as ReturnType<typeof parseArgs<T>>
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify.*$/s, ''))
  }
}

/**
 * Runs a CLI's main function: any error that escapes start-up is printed as one line,
 * `<program>: <message>`, and sets the exit code (2 usage, 1 otherwise). Unexpected
 * errors keep their stack, because they are our bugs, not the user's.
 */
export function runMain(program: string, main: () => Promise<void>): void {
  guardSigusr1()
  main().catch((err: unknown) => {
    const expected = err instanceof EdgeError || (err as NodeJS.ErrnoException)?.code !== undefined
    const message = expected ? (err as Error).message : String((err as Error)?.stack ?? err)
    if (!(err instanceof ChildStartError && err.reported)) process.stderr.write(`${program}: ${message}\n`)
    if (err instanceof UsageError) process.stderr.write(`Try '${program} --help' for more information.\n`)
    process.exitCode = exitCodeFor(err)
    // A manager's child that cannot start must exit (its manager reports it), not stay alive
    // with nothing but its IPC channel.
    if (process.connected) process.disconnect?.()
  })
}

let guarded = false

/**
 * Node's default action for SIGUSR1 is to open its inspector on 127.0.0.1:9229, where any
 * local user could then run code in the daemon (as root, if it runs as root). The real
 * programs use SIGUSR1 to reopen their logs (nginx, stunnel; logrotate sends it), so it will
 * be sent. Any listener turns Node's action off: this one is there from a CLI's first line,
 * before configuration is read; handleSignals adds the daemon's own meaning later.
 */
export function guardSigusr1(): void {
  if (guarded) return
  guarded = true
  process.on('SIGUSR1', () => undefined)
}
