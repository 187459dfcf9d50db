
import { accessPhase } from './access.js'
import { autoindex } from './autoindex.js'
import type { LocationModel } from './config/model.js'
import type { FileCache, FileInfo } from './file-cache.js'
import { gzipOk } from './gzip-filter.js'
import { findLocation } from './locations.js'
import { keepAliveLimits } from './keep-alive.js'
import type { CacheZone } from './proxy-cache.js'
import { type LimitLog, type LimitZones, limitConnPhase, limitReqPhase } from './limits.js'
import { proxy } from './proxy.js'
import { realIpPhase } from './real-ip.js'
import type { RequestState } from './request-state.js'
import { baseHeaders, finishHeaders, sendBuiltin, sendRedirect, sendWhole } from './respond.js'
import { runRewrites } from './rewrite-phase.js'
import { sendFile } from './static-file.js'
import { symlinkStatus } from './symlinks.js'
import type { Upstream } from './upstream.js'
import { escapeUri, normalize } from './uri.js'
import { captured } from './user-variables.js'
import { expand, type Template } from './variables.js'

export interface HandlerDeps {
  cache: FileCache
  upstreams: ReadonlyMap<string, Upstream>
  /** proxy_cache_path zones by name. */
  caches: ReadonlyMap<string, CacheZone>
  /** stub_status's page, now. */
  stubStatusText(): string
  /** limit_req / limit_conn zones, and the error log at the level their directives name. */
  limits: LimitZones
  log: LimitLog
}

type Step = 'done' | 'restart'

/**
 * nginx's phases for one request: server rewrites, find location, location rewrites,
 * content (proxy_pass, try_files, index, static), then error_page for what went wrong.
 * Every internal redirect (rewrite last, index, try_files fallback, error_page) costs a cycle;
 * after 10 nginx answers 500 ("rewrite or internal redirection cycle") and so do we.
 */
export async function handle(st: RequestState, deps: HandlerDeps): Promise<void> {
  const sr = runRewrites(st, st.server.rewrites, deps.cache)
  const r = typeof sr === 'object' ? await sr : sr
  if (r === 'done') return
  if (typeof r === 'number' && (await finalize(st, r)) === 'done') return
  let named: LocationModel | undefined
  for (;;) {
    if (st.cycles-- <= 0) return sendBuiltin(st, 500)
    let step: Step | number
    if (named) {
      st.loc = named
      st.conf = named.conf
      named = undefined
      keepAliveLimits(st)
    } else {
      if (st.redirected) {
        // ngx_http_internal_redirect resumes at the server-rewrite phase, in the server's configuration.
        st.redirected = false
        st.conf = st.server.conf
        const again = await runRewrites(st, st.server.rewrites, deps.cache)
        if (again === 'done') return
        if (typeof again === 'number') {
          if ((await finalize(st, again)) === 'done') return
          continue
        }
      }
      const m = findLocation(st.server.locations, st.uri)
      st.loc = m.loc
      st.conf = m.loc?.conf ?? st.server.conf
      if (m.autoRedirect && m.loc) {
        st.location = m.loc.pattern + (st.args ? `?${st.args}` : '')
        if ((await finalize(st, 301)) === 'done') return
        continue
      }
      if (m.captures) captured(st, m.captures)
      st.rewriteBreak = false
      keepAliveLimits(st)
      if (m.loc?.conf.internal && !st.uriChanged && !st.inErrorPage) {
        step = await finalize(st, 404)
        if (step === 'done') return
        continue
      }
    }
    const limit = st.conf.clientMaxBodySize
    if (limit > 0 && (st.req.contentLength ?? 0) > limit) {
      st.req.keepAlive = false
      step = await finalize(st, 413)
    } else {
      const lr = st.loc ? runRewrites(st, st.loc.rewrites, deps.cache) : 'next'
      const rw = typeof lr === 'object' ? await lr : lr
      if (rw === 'done') return
      if (rw === 'restart') continue
      step = typeof rw === 'number' ? rw : await preaccessAndContent(st, deps)
    }
    if (typeof step === 'number') step = await finalize(st, step)
    if (step === 'done') return
    if (st.pendingNamed) {
      named = st.pendingNamed
      st.pendingNamed = undefined
    }
  }
}

/**
 * nginx's preaccess phase in its module order (realip, limit_req, limit_conn), then access
 * (allow/deny, auth_basic, satisfy), then the content handler.
 */
async function preaccessAndContent(st: RequestState, deps: HandlerDeps): Promise<Step | number> {
  // ngx_http_core_access_phase skips subrequests; limit_req and limit_conn ran for the main request.
  if (st.isSubrequest) return content(st, deps)
  realIpPhase(st)
  const req = limitReqPhase(st, deps.limits, deps.log)
  if (typeof req === 'number') return req
  if (req) await req
  const conn = limitConnPhase(st, deps.limits, deps.log)
  if (conn !== undefined) return conn
  if (st.conf.access.length === 0 && !st.conf.authBasic) return content(st, deps)
  // Error lines through the request's own logger (its connection and request ids).
  const log = (level: string, msg: string) => (level === 'info' || level === 'notice' ? deps.log(level, msg) : st.logError(msg))
  return (await accessPhase(st, log)) ?? content(st, deps)
}

async function content(st: RequestState, deps: HandlerDeps): Promise<Step | number> {
  const conf = st.conf
  if (conf.stubStatus) {
    // ngx_http_stub_status_handler: GET and HEAD only, text/plain with a length.
    if (st.req.method !== 'GET' && st.req.method !== 'HEAD') return 405
    sendWhole(st, 200, finishHeaders(st, 200, [...baseHeaders(), 'Content-Type', 'text/plain']), deps.stubStatusText())
    return 'done'
  }
  if (conf.proxyPass) {
    const up = deps.upstreams.get(conf.proxyPass.upstream)
    if (!up) return 502
    const r = await proxy(st, up, deps.caches)
    return r ?? 'done'
  }
  if (conf.tryFiles) return tryFiles(st, deps)
  return staticContent(st, deps)
}

/** $document_root + $uri, or the alias with the location prefix replaced. */
function mapPath(st: RequestState, uri: string): string {
  const c = st.conf
  if (c.alias) {
    const alias = expand(c.alias, st)
    st.documentRoot = alias
    const p = c.aliasRegex ? alias : alias + uri.slice(c.aliasPrefix.length)
    st.requestFilename = p
    return p
  }
  const root = expand(c.root, st)
  st.documentRoot = root
  st.requestFilename = root + uri
  return root + uri
}

/**
 * The path must stay under its root or alias: refuses what a variable could have smuggled past
 * parseTarget, and nginx's alias "off-by-slash" (`location /img { alias /srv/img/; }` serves
 * `/img../secret` from `/srv/secret`; `alias /srv/img` serves `/imgx` from `/srv/imgx`).
 */
function contained(st: RequestState, path: string): boolean {
  if (path.includes('\0')) return false
  const rest = path.slice(st.documentRoot.length)
  if (rest === '') return true
  if (rest.startsWith('/')) return normalize(rest, false) !== undefined
  return st.documentRoot.endsWith('/') && normalize(`/${rest}`, false) !== undefined
}

async function tryFiles(st: RequestState, deps: HandlerDeps): Promise<Step | number> {
  const list = st.conf.tryFiles as NonNullable<typeof st.conf.tryFiles>
  for (let i = 0; i < list.length - 1; i++) {
    const tpl = list[i] as Template
    const tail = tpl[tpl.length - 1]
    // A directory test is decided by the config text ending in `/`, not by the expanded value.
    const dir = typeof tail === 'string' && tail.endsWith('/')
    let name = expand(tpl, st)
    if (dir) name = name.slice(0, -1)
    const path = mapPath(st, name)
    if (!contained(st, path)) continue
    const info = await deps.cache.stat(path)
    if (info instanceof Error) continue
    if (dir ? info.kind !== 'dir' : info.kind !== 'file') continue
    if ((await symlinkStatus(st, path, dir)) !== undefined) continue
    // A directory match leaves the URI without its slash (ngx_http_core_try_files_phase).
    if (name !== st.uri) {
      st.uri = name
      st.uriChanged = true
    }
    // The file found is the one served: its stat is shared rather than made twice.
    return staticContent(st, deps, dir ? undefined : { path, info })
  }
  const last = expand(list[list.length - 1] as never, st)
  if (last.startsWith('=')) return Number(last.slice(1))
  if (last.startsWith('@')) {
    const loc = st.server.named.get(last.slice(1))
    if (!loc) return 500
    st.pendingNamed = loc
    return 'restart'
  }
  internalRedirect(st, last)
  return 'restart'
}

function internalRedirect(st: RequestState, target: string): void {
  const q = target.indexOf('?')
  st.uri = q >= 0 ? target.slice(0, q) : target
  if (q >= 0) st.args = target.slice(q + 1)
  st.uriChanged = true
  st.redirected = true
}

/** ngx_http_index_module, autoindex and ngx_http_static_module. */
async function staticContent(st: RequestState, deps: HandlerDeps, tried?: { path: string; info: FileInfo }): Promise<Step | number> {
  const method = st.method
  if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') return 405
  const uri = st.uri
  if (uri.endsWith('/')) {
    const dirPath = mapPath(st, uri)
    if (!contained(st, dirPath)) return 404
    // The directory is opened (O_NOFOLLOW) before its index files are looked for or it is listed.
    const refused = await symlinkStatus(st, dirPath, true)
    if (refused !== undefined) return refused
    for (const idx of st.conf.index) {
      const name = expand(idx, st)
      if (name.startsWith('/')) {
        internalRedirect(st, name)
        return 'restart'
      }
      const info = await deps.cache.stat(dirPath + name)
      if (info instanceof Error) continue
      internalRedirect(st, uri + name + (st.args ? `?${st.args}` : ''))
      return 'restart'
    }
    const dir = await deps.cache.stat(dirPath)
    if (dir instanceof Error) return dir.code === 'EACCES' ? 403 : 404
    if (dir.kind !== 'dir') return 404
    // autoindex declines anything but GET and HEAD; the content phase then forbids the directory.
    if (st.conf.autoindex && method !== 'POST') return autoindex(st, dirPath, deps.log)
    return 403
  }
  const path = mapPath(st, uri)
  if (!contained(st, path)) return 404
  const info = tried?.path === path ? tried.info : await deps.cache.stat(path)
  if (info instanceof Error) return info.code === 'EACCES' ? 403 : 404
  const refused = await symlinkStatus(st, path, false)
  if (refused !== undefined) return refused
  if (info.kind === 'dir') {
    const loc = escapeUri(`${uri}/`) + (st.args ? `?${st.args}` : '')
    sendRedirect(st, 301, loc)
    return 'done'
  }
  if (info.kind !== 'file') return 404
  if (method === 'POST') return 405
  if (st.conf.gzipStatic !== false) {
    // ngx_http_gzip_static_handler: the twin is looked for when the client takes gzip, or
    // under gzip_vary (its existence alone adds the Vary field, whoever asks).
    const ok = st.conf.gzipStatic === 'always' || gzipOk(st, undefined)
    if (ok || st.conf.gzip.vary) {
      const gz = await deps.cache.stat(`${path}.gz`)
      if (!(gz instanceof Error) && gz.kind === 'file') {
        st.gzipVary = true
        if (ok) {
          await sendFile(st, `${path}.gz`, gz, deps.cache, 'gzip')
          return 'done'
        }
      }
    }
  }
  await sendFile(st, path, info, deps.cache)
  return 'done'
}

/**
 * ngx_http_special_response_handler: an error_page for `status` redirects internally (a URI or
 * a named location; `=code` sets the answer's status) or, for a URL, answers 302; without one,
 * nginx's built-in page. One level only unless recursive_error_pages (the cycle limit still bounds it).
 */
async function finalize(st: RequestState, status: number): Promise<Step> {
  if (!st.errorPagesDone) {
    for (const ep of st.conf.errorPages) {
      if (!ep.codes.includes(status)) continue
      const target = expand(ep.target, st)
      st.inErrorPage = true
      // r->error_page: set unless the location where this error happened allows recursion.
      if (!st.conf.recursiveErrorPages) st.errorPagesDone = true
      st.errorStatus = ep.status === null ? undefined : (ep.status ?? status)
      if (target.startsWith('@')) {
        const loc = st.server.named.get(target.slice(1))
        if (!loc) break
        st.pendingNamed = loc
        return 'restart'
      }
      if (!target.startsWith('/')) {
        const s = ep.status && ep.status >= 301 && ep.status <= 308 ? ep.status : 302
        sendRedirect(st, s, target)
        return 'done'
      }
      // The error page is fetched with GET, whatever the request's method (HEAD stays HEAD).
      if (st.method !== 'HEAD') st.method = 'GET'
      internalRedirect(st, target)
      return 'restart'
    }
  }
  sendBuiltin(st, st.inErrorPage && st.errorStatus !== undefined ? st.errorStatus : status)
  return 'done'
}

