import type { HostPort, LogFormat } from '@edgestack/common'

/**
 * The one configuration model of caching-router: varnishd's command line (and ours) becomes
 * this frozen data, and everything else reads it. Decisions are not here: they are VCL. `-b`
 * and the article's flags are VCL text (`flags-vcl.ts`), `-f` a file, and either goes through
 * the one compiler, as varnishd compiles the text it makes of `-b`.
 */

/** `-a /path[,mode=OCTAL]`: a Unix-domain socket, as varnishd 7 listens on one. */
export interface UnixSocketSpec {
  readonly path: string
  /** The socket file's permissions; without it, as the umask leaves them. */
  readonly mode?: number | undefined
}

export interface ListenSpec {
  readonly address: HostPort | UnixSocketSpec
  /** `-a addr,PROXY`: a PROXY protocol v1/v2 header comes first on every connection. */
  readonly proxy: boolean
  /** `-a NAME=addr`; varnishd names the others a0, a1, ... */
  readonly name?: string | undefined
}

/** Where the boot VCL comes from. */
export type VclSpec =
  /** `-f FILE`: what SIGHUP re-reads. */
  | { readonly kind: 'file'; readonly path: string }
  /** VCL the command line stands for (`-b`, `--static-backend/--app-backend`), named as its source. */
  | { readonly kind: 'text'; readonly name: string; readonly text: string }

export interface RouterModel {
  readonly listen: readonly ListenSpec[]
  readonly vcl: VclSpec
  /** `-s malloc,SIZE`. */
  readonly storageBytes: number
  /** `-p NAME=VALUE`, in command-line order, each already checked against params.ts. */
  readonly params: readonly (readonly [name: string, value: string])[]
  /** What Via names (varnishd: the host name, or `-i`). */
  readonly identity: string | undefined
  /** `-T` / `-S`: the admin CLI address and the secret file (read when the router starts). */
  readonly admin: { readonly address: HostPort; readonly secretFile: string | undefined } | undefined
  /** Append varnishncsa's `%{Varnish:handling}x` (hit, miss, pass, pipe, synth) to access lines. */
  readonly logHandling: boolean
  /** varnishncsa's `-F FORMAT` and `-j`, as `--access-log-format` and `--access-log-json`; varnishncsa's default without. */
  readonly accessFormat?: { readonly format: string; readonly json: boolean } | undefined
  /** `--brotli` (edgestack): a brotli copy beside each gzip object, for clients that take br. */
  readonly brotli?: boolean
}

/** What the command line asks of the CLI itself, besides the router's model. */
export interface CliModel extends RouterModel {
  readonly pidFile: string | undefined
  /** `--metrics ADDR` (edgestack): /metrics, /healthz and /readyz, served by the manager. */
  readonly metrics: HostPort | undefined
  /** `--drain-delay SEC` (edgestack): /readyz 503 while still accepting, before a stop's drain. */
  readonly drainDelayMs: number
  /** `--workers N|auto` (edgestack): worker threads, one cache across them; 1 by default. */
  readonly workers: number
  /** `--log-format` (edgestack): the router's own log as text or JSON lines. */
  readonly logFormat: LogFormat
  readonly help: boolean
  /** `-C`: check the VCL, print what it compiled into, exit. */
  readonly check: boolean
  /** `-d`: varnishd's debug mode: a CLI on stdin, no serving until `start`, exit when stdin closes. */
  readonly debug: boolean
  /** `-M 'HOST PORT'`: the reverse CLI, connected out to a manager such as varnishtest. */
  readonly reverseCli: HostPort | undefined
  /** `-n DIR`: where the shared memory (VSM) goes and `_.secret` when no -S is given. */
  readonly workdir: string | undefined
  /** `-l SIZE`: the size of the shared-memory log (vsl_space). */
  readonly logBytes: number
  /** -b, -f, --static-backend or --app-backend given: there is something to serve at once. */
  readonly backendGiven: boolean
}
