import { constants, X509Certificate } from 'node:crypto'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { formatPosition, type HostPort, type SourcePosition } from '@edgestack/common'
import type { BuildOptions, BuiltModel } from './build-model.js'
import { type HitchSetting, readHitchConf } from './hitch-conf.js'
import { alpnList, bool, check, endpoint, fail, hostOf, num, portOf, text, tlsProtos } from './hitch-values.js'
import {
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_SESSION_CACHE_SIZE,
  DEFAULT_SESSION_TIMEOUT_S,
  DEFAULT_TIMEOUTS,
  deepFreeze,
  type GlobalModel,
  type ListenerModel,
  type ServiceModel,
  type SyslogLevel,
  type TerminatorModel,
} from './model.js'

/** What a hitch.conf (and hitch's flags) give besides the model: hitch's `workers`. */
export interface HitchBuilt extends BuiltModel {
  workers: number | undefined
}

// hitch 1.7's defaults (hitch --help; configuration.c): its cipher list, OpenSSL's TLS 1.3
// suites in OpenSSL's order, the frontend and backend used when none is given.
const HITCH_CIPHERS = 'EECDH+AESGCM:EDH+AESGCM:AES256+EECDH:AES256+EDH'
const OPENSSL_CIPHERSUITES = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256'
const DEFAULT_FRONTEND = '[*]:8443'
const DEFAULT_BACKEND = '[127.0.0.1]:8000'
const DEFAULT_KEEPALIVE_S = 3600
/** hitch's log-level (0 silence, 1 errors, 2 info/debug) onto syslog levels: 2 logs every connection. */
const LOG_LEVELS: readonly SyslogLevel[] = [3, 4, 7]

interface PemFile {
  cert: string
  key: string
  setting: HitchSetting
  /** The names clients ask for (CN and DNS subjectAltNames), lower case. */
  names: string[]
}

async function pemFile(s: HitchSetting, warnings: string[]): Promise<PemFile> {
  let cert: string | undefined
  let key: string | undefined
  if (s.value.kind === 'block') {
    for (const inner of s.value.settings) {
      const o = check(inner, 'pem', warnings)
      if (o?.key === 'cert') cert = text(inner)
      else if (o?.key === 'private-key') key = text(inner)
    }
    if (!cert) fail(s, 'a pem-file block needs cert = "FILE"')
  } else cert = text(s)
  // hitch's words (configuration.c), checked here so that they name the hitch.conf line.
  for (const [path, what] of [
    [cert, 'x509 certificate PEM file'],
    [key, 'private keyfile'],
  ] as const) {
    if (path === undefined) continue
    const st = await stat(path).catch((err: NodeJS.ErrnoException) => fail(s, `Unable to stat ${what} '${path}': ${err.code}`))
    if (!st.isFile()) fail(s, `Invalid ${what} '${path}': Not a file.`)
  }
  let x509: X509Certificate
  try {
    x509 = new X509Certificate(await readFile(cert))
  } catch (err) {
    return fail(s, `${cert} is not a PEM certificate: ${(err as Error).message}`)
  }
  const names = new Set<string>()
  for (const line of x509.subject.split('\n')) if (line.startsWith('CN=')) names.add(line.slice(3).toLowerCase())
  for (const part of (x509.subjectAltName ?? '').split(', ')) if (part.startsWith('DNS:')) names.add(part.slice(4).toLowerCase())
  return { cert, key: key ?? cert, setting: s, names: [...names] }
}

/**
 * hitch's pem-dir: the directory's regular files in lexicographic order, those whose name
 * matches pem-dir-glob (fnmatch's `*` and `?`) when it is set.
 */
async function pemDirFiles(dirSetting: HitchSetting | undefined, globSetting: HitchSetting | undefined): Promise<HitchSetting[]> {
  if (!dirSetting) {
    if (globSetting) fail(globSetting, 'pem-dir-glob needs pem-dir')
    return []
  }
  const dir = text(dirSetting)
  const glob = globSetting ? text(globSetting) : undefined
  if (glob !== undefined && /[[\]\\]/.test(glob)) fail(globSetting as HitchSetting, `"${glob}": only * and ? are supported`)
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => fail(dirSetting, `Unable to open directory '${dir}': ${err.code}`))
  const out: HitchSetting[] = []
  for (const name of names.sort()) {
    if (glob !== undefined && !globMatch(glob, name)) continue
    const path = join(dir, name)
    if (!(await stat(path).then((st) => st.isFile(), () => false))) continue
    out.push({ ...dirSetting, key: 'pem-file', value: { kind: 'string', text: path } })
  }
  if (out.length === 0) fail(dirSetting, `no certificate file in '${dir}'${glob ? ` matching '${glob}'` : ''}`)
  return out
}

/** fnmatch(3) with `*` and `?` only, without building a regular expression. */
function globMatch(glob: string, name: string): boolean {
  let g = 0
  let n = 0
  let star = -1
  let mark = 0
  while (n < name.length) {
    if (g < glob.length && (glob[g] === '?' || glob[g] === name[n])) {
      g++
      n++
    } else if (g < glob.length && glob[g] === '*') {
      star = g++
      mark = n
    } else if (star !== -1) {
      g = star + 1
      n = ++mark
    } else return false
  }
  while (glob[g] === '*') g++
  return g === glob.length
}

/** Settings that a frontend block may set for itself, over the top level's. */
const PER_FRONTEND = ['ciphers', 'ciphersuites', 'tls-protos', 'prefer-server-ciphers', 'client-verify', 'client-verify-ca'] as const

/**
 * hitch.conf (and hitch's flags, which come after the file and override it) into the one
 * model: a listener per frontend, a service per certificate, the certificates' names as SNI
 * patterns (hitch picks a certificate by the names in it; the last pem-file is the default).
 */
export async function buildHitchModel(
  settings: readonly HitchSetting[],
  opts: Omit<BuildOptions, 'alpnProtocols'>,
): Promise<HitchBuilt> {
  const warnings: string[] = []
  const single = new Map<string, HitchSetting>()
  const frontends: HitchSetting[] = []
  const pemFiles: HitchSetting[] = []
  for (const s of settings) {
    const o = check(s, 'global', warnings)
    if (!o) continue
    if (o.key === 'frontend') frontends.push(s)
    else if (o.key === 'pem-file') pemFiles.push(s)
    else single.set(o.key === 'write-proxy' ? 'write-proxy-v2' : o.key, s)
  }
  const get = (k: string) => single.get(k)
  const on = (k: string) => {
    const s = get(k)
    return s ? bool(s) : false
  }

  if (on('write-proxy-v1') && on('write-proxy-v2')) {
    const later = [get('write-proxy-v1'), get('write-proxy-v2')].sort((a, b) => (a?.position?.line ?? 1e9) - (b?.position?.line ?? 1e9))[1]
    fail(later as HitchSetting, 'Options --write-ip, --write-proxy-proxy, --write-proxy-v1 and --write-proxy-v2 are mutually exclusive.')
  }
  const logLevel = get('log-level')
  if (logLevel && num(logLevel) > 2) fail(logLevel, `${num(logLevel)} is not a log level: 0 (silence), 1 (errors) or 2 (info/debug)`)
  const workers = get('workers')
  if (workers && (num(workers) < 1 || num(workers) > 256)) fail(workers, `${text(workers)} is not a number of workers from 1 to 256`)
  const clientVerify = (s: HitchSetting | undefined) => {
    const v = s ? text(s) : 'none'
    if (v !== 'none' && v !== 'optional' && v !== 'required') fail(s as HitchSetting, `"${v}" is not one of none, optional, required`)
    return v
  }
  clientVerify(get('client-verify'))
  const daemon = get('daemon')
  if (daemon && bool(daemon)) {
    warnings.push(`${daemon.position ? `${formatPosition(daemon.position)}: ` : '--daemon: '}daemon: tls-terminator stays in the foreground; let the service manager run it in the background`)
  }

  const backendSetting = get('backend')
  const backendSpec = backendSetting ? text(backendSetting) : DEFAULT_BACKEND
  if (backendSpec.startsWith('/')) fail(backendSetting as HitchSetting, 'a UNIX domain socket backend is not supported')
  const backend = endpoint(backendSetting ?? ({ key: 'backend', position: undefined } as unknown as HitchSetting), backendSpec, false).address

  const alpnSetting = get('alpn-protos')
  const alpn = alpnSetting ? alpnList(alpnSetting) : undefined
  // pem-dir's files first, so that a pem-file naming the same host wins (the last loaded wins);
  // the default is the last pem-file, or without one the directory's first file (hitch.conf(5)).
  const fromDir = await pemDirFiles(get('pem-dir'), get('pem-dir-glob'))
  const globalPems = await Promise.all([...fromDir, ...pemFiles].map((p) => pemFile(p, warnings)))
  const globalDefault = pemFiles.length > 0 ? globalPems.length - 1 : 0
  const global: GlobalModel = {
    source: opts.source,
    foreground: get('log-filename') ? 'quiet' : 'yes',
    pid: get('pidfile') ? text(get('pidfile') as HitchSetting) : undefined,
    output: get('log-filename') ? text(get('log-filename') as HitchSetting) : undefined,
    debug: on('quiet') ? 3 : (LOG_LEVELS[logLevel ? num(logLevel) : 1] as SyslogLevel),
    setuid: get('user') ? text(get('user') as HitchSetting) : undefined,
    setgid: get('group') ? text(get('group') as HitchSetting) : undefined,
  }
  const protocol = on('write-proxy-v2') ? 'proxy-v2' : on('write-proxy-v1') ? 'proxy' : undefined
  const proxyTlvSetting = get('proxy-tlv')
  const keepalive = get('keepalive')
  const keepaliveS = keepalive ? num(keepalive) : DEFAULT_KEEPALIVE_S
  const secs = (k: string, dflt: number) => (get(k) ? num(get(k) as HitchSetting) * 1000 : dflt)

  const listeners: ListenerModel[] = []
  const frontendList = frontends.length > 0 ? frontends : [{ key: 'frontend', value: { kind: 'string', text: DEFAULT_FRONTEND }, position: undefined, text: '' } as unknown as HitchSetting]
  for (const f of frontendList) {
    const own = new Map<string, HitchSetting>()
    const ownPems: HitchSetting[] = []
    let address: HostPort
    let matchGlobal = false
    if (f.value.kind === 'block') {
      let host: string | undefined
      let port: string | undefined
      for (const inner of f.value.settings) {
        const o = check(inner, 'frontend', warnings)
        if (!o) continue
        if (o.key === 'host') host = text(inner)
        else if (o.key === 'port') port = text(inner)
        else if (o.key === 'pem-file') ownPems.push(inner)
        else if (o.key === 'match-global-certs') matchGlobal = bool(inner)
        else own.set(o.key, inner)
      }
      if (port === undefined) fail(f, 'Invalid/unset host/port string.')
      address = { host: hostOf(f, host ?? '*'), port: portOf(f, port) }
    } else {
      const e = endpoint(f, text(f), true)
      address = e.address
      if (e.cert) ownPems.push({ ...f, key: 'pem-file', value: { kind: 'string', text: e.cert } })
    }
    const pems = [
      ...(await Promise.all(ownPems.map(async (p) => ({ ...(await pemFile(p, warnings)), own: true })))),
      ...(ownPems.length === 0 || matchGlobal ? globalPems.map((p) => ({ ...p, own: false })) : []),
    ]
    if (pems.length === 0) fail(f, `No x509 certificate PEM file specified for frontend '${f.position ? `[${address.host}]:${address.port}` : 'default'}'!`)
    const name = `frontend [${address.host}]:${address.port}`
    // hitch.conf(5): a frontend block's settings apply to its own pem-files; the top-level
    // certificates it uses (none of its own, or match-global-certs) keep the top level's.
    const serviceFor = (pem: PemFile & { own: boolean }, primary: boolean): ServiceModel => {
      const pick = (k: (typeof PER_FRONTEND)[number]) => (pem.own ? own.get(k) : undefined) ?? get(k)
      const versions = pick('tls-protos') ? tlsProtos(pick('tls-protos') as HitchSetting) : { min: 'TLSv1.2' as const, max: 'TLSv1.3' as const }
      const verify = clientVerify(pick('client-verify'))
      const caSetting = pick('client-verify-ca')
      if (verify !== 'none' && !caSetting) fail((pick('client-verify') ?? f) as HitchSetting, `client-verify = ${verify} needs client-verify-ca`)
      const positions: Record<string, SourcePosition> = {}
      const at = (k: string, s: HitchSetting | undefined) => {
        if (s?.position) positions[k] = s.position
      }
      at('accept', f)
      at('connect', backendSetting)
      at('cert', pem.setting)
      at('key', pem.setting)
      at('CAfile', caSetting)
      at('ciphers', pick('ciphers'))
      at('ciphersuites', pick('ciphersuites'))
      at('curves', get('ecdh-curve'))
      const preferServer = pick('prefer-server-ciphers')
      return {
        name: primary ? name : `${name} ${pem.cert}`,
        position: f.position,
        positions,
        accept: primary ? address : undefined,
        connect: [backend],
        failover: 'prio',
        local: undefined,
        cert: pem.cert,
        key: pem.key,
        clientCerts: {
          caFile: caSetting ? text(caSetting) : undefined,
          caPath: undefined,
          crlFile: undefined,
          verifyChain: verify !== 'none',
          verifyPeer: false,
          requireCert: verify === 'required',
          requestCert: verify !== 'none',
        },
        sslVersionMin: versions.min,
        sslVersionMax: versions.max,
        ciphers: pick('ciphers') ? text(pick('ciphers') as HitchSetting) : HITCH_CIPHERS,
        ciphersuites: pick('ciphersuites') ? text(pick('ciphersuites') as HitchSetting) : OPENSSL_CIPHERSUITES,
        curves: get('ecdh-curve') && text(get('ecdh-curve') as HitchSetting) !== 'auto' ? text(get('ecdh-curve') as HitchSetting) : undefined,
        securityLevel: undefined,
        optionsSet: preferServer && bool(preferServer) ? constants.SSL_OP_CIPHER_SERVER_PREFERENCE : 0,
        optionsClear: 0,
        sni: [],
        timeouts: {
          busyMs: secs('ssl-handshake-timeout', DEFAULT_TIMEOUTS.busyMs),
          // hitch closes its side as soon as the backend has closed and the data is flushed.
          closeMs: 0,
          connectMs: secs('backend-connect-timeout', DEFAULT_TIMEOUTS.connectMs),
          idleMs: DEFAULT_TIMEOUTS.idleMs,
        },
        protocol,
        proxyTlv: proxyTlvSetting ? bool(proxyTlvSetting) : true,
        alpnProtocols: alpn,
        keepaliveMs: keepaliveS > 0 ? keepaliveS * 1000 : undefined,
        sessionResume: true,
        sessionCacheTimeoutS: DEFAULT_SESSION_TIMEOUT_S,
        sessionCacheSize: DEFAULT_SESSION_CACHE_SIZE,
        ticketKeySecret: undefined,
        ticketMacSecret: undefined,
        debug: global.debug,
      }
    }
    // hitch.conf(5): the last pem-file is the default; a name in several certificates goes to
    // the last one loaded; an exact name wins over a wildcard.
    const defaultIndex = ownPems.length > 0 ? ownPems.length - 1 : globalDefault
    const services = pems.map((p, i) => serviceFor(p, i === defaultIndex))
    const primary = services[defaultIndex] as ServiceModel
    const byName: { pattern: string; service: ServiceModel }[] = []
    for (const wildcard of [false, true]) {
      for (let i = pems.length - 1; i >= 0; i--) {
        for (const n of (pems[i] as PemFile).names) {
          if (n.startsWith('*.') === wildcard) byName.push({ pattern: n, service: services[i] as ServiceModel })
        }
      }
    }
    listeners.push({ service: primary, virtualHosts: byName })
  }
  const seen = new Map<string, HitchSetting>()
  for (const [i, l] of listeners.entries()) {
    const a = l.service.accept as HostPort
    const key = `${a.host}:${a.port}`
    if (seen.has(key) && a.port !== 0) fail(frontendList[i] as HitchSetting, `the same address as another frontend`)
    seen.set(key, frontendList[i] as HitchSetting)
  }
  const model: TerminatorModel = {
    global,
    listeners,
    maxConnections: opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    drainTimeoutMs: opts.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
    metrics: opts.metrics,
    drainDelayMs: opts.drainDelayMs ?? 0,
  }
  return { model: deepFreeze(model), warnings, workers: workers ? num(workers) : undefined }
}

/**
 * `tls-terminator --config=FILE [hitch flags] [PEM...]`, as `hitch --config=FILE ...`: the
 * file's settings, then the flags' (which override them), then the PEM arguments as pem-file.
 */
export async function loadHitch(
  config: string | undefined,
  flags: readonly HitchSetting[],
  pems: readonly string[],
  opts: Omit<BuildOptions, 'alpnProtocols' | 'source'>,
): Promise<HitchBuilt> {
  const fromFile = config ? await readHitchConf(config) : []
  const pemFlags: HitchSetting[] = pems.map((p) => ({ key: 'pem-file', value: { kind: 'string', text: p }, position: undefined, text: p }))
  return buildHitchModel([...fromFile, ...flags, ...pemFlags], { ...opts, source: config ?? '(command line)' })
}
