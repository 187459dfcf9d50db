/**
 * The VCL compiler: varnishd's configuration language for caching-router.
 *
 * How the router drives it:
 *
 *   1. Load: `loadVclFile(path)` (or `new VclProgram(name, { name, text })`) parses, checks and
 *      compiles the file once into closures, with varnish's built-in VCL appended. Any problem
 *      throws a `VclError` (a ConfigError) whose message reads `file:line:col: problem`, then the
 *      source line and a caret, in varnishd's wording. Do this before binding any port.
 *      `checkVclFile(path)` is the same check for `caching-router -C -f FILE`, and
 *      `program.describe()` what to print there (varnishd -C prints its generated C).
 *   2. Warm up: call `program.init(ctx)` once (runs vcl_init: directors get their members; a
 *      `fail` return means the VCL must not be used), then `program.startProbes()` to start the
 *      health checks of backends with a `.probe`; `stopProbes()` when the VCL is discarded.
 *      `VclRegistry.load()` does both (and refuses the VCL when vcl_init fails).
 *   3. Per request, take the VCL with `registry.acquire()` (VclRegistry: vcl.load / vcl.use /
 *      vcl.list / vcl.discard / SIGHUP reload; `release()` when the response is done), build a
 *      `VclContext` with `program.newRequest({...})` (or implement context.ts yourself:
 *      req/bereq/beresp/resp/obj with `VclHeaders`, addresses, `hashData`, `ban`, `log`; the
 *      `startBackendRequest` / `startBackendResponse` / `startResponse` / `setObject` helpers
 *      fill the objects of each step), and walk varnish's state machine, calling
 *      `program.run(method, ctx)` at each step and following the returned action. `run` never
 *      throws: a value VCL may not put on the wire (CR/LF in a header, space in a URL) makes
 *      it return `fail`, which is a 503 for that request:
 *
 *        recv  -> hash -> lookup -> hit  -> deliver
 *                                -> miss -> fetch (backend side) -> deliver
 *              -> pass  -> pass -> fetch (backend side, uncacheable) -> deliver
 *              -> pipe  -> pipe (raw bytes both ways)
 *              -> purge -> hash -> lookup (drop the object and its variants) -> purge -> synth
 *              -> synth -> synth -> deliver
 *        backend side: backend_fetch -> fetch -> backend_response -> deliver | pass | retry
 *                                    \-> (fetch failed) backend_error -> deliver | retry
 *        restart (from hit/miss/pass/deliver/synth/purge) -> recv again with req.restarts + 1
 *
 *      `NEXT_STEP` lists which step each action leads to. After recv, `ctx.req.backendHint`
 *      (preset to `program.compiled.defaultBackend` by `newRequest`) names the backend; call
 *      `.resolve(ctx)` on it to get a healthy concrete backend (directors skip sick ones),
 *      undefined meaning 503.
 *   4. Bans: implement `ctx.ban(text)` with `parseBanString(text)` and the admin CLI's `ban` with
 *      `parseBan(args)`; both give a `Ban` whose `matches()` tests a stored object.
 */
export { Acl } from './acl.js'
export { type Ban, BanError, type BanSubject, parseBan, parseBanString } from './ban.js'
export type { CompiledVcl } from './compile.js'
export { compileVcl } from './compile.js'
export type {
  VclBackendRef,
  VclBackendRequest,
  VclBackendResponse,
  VclContext,
  VclIp,
  VclMessage,
  VclMethod,
  VclObject,
  VclRequest,
  VclResolvedBackend,
  VclResponse,
  VclReturn,
  VclTrace,
} from './context.js'
export { VclHeaders } from './context.js'
export { Backend, type ProbeOptions } from './directors.js'
export { Director } from './vdir-director.js'
export { ShardDirector, ShardParamObject } from './shard-director.js'
export { NEXT_STEP } from './flow.js'
export { type ProbeResult, ProbeRunner } from './probe.js'
export { VclProgram } from './program.js'
export {
  createRequestContext,
  type RequestInit,
  type ResponseInit,
  setObject,
  startBackendRequest,
  startBackendResponse,
  startResponse,
} from './request-context.js'
export { excerpt, type VclSource, VclError } from './source.js'
export { checkVclFile, loadVclFile, loadVclText } from './load.js'
export { VclAdminError, VclRegistry } from './registry.js'
export { VclRuntimeError } from './variables.js'
